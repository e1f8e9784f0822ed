"""ModelStore: atomic commit and activation, checksums, history, retention, and the lock."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nlu_ci.errors import ConfigError, LockedError, StoreError
from nlu_ci.registry.store import ModelStore


def fake_model(store: ModelStore, name: str, payload: bytes = b"weights") -> Path:
    staged = store.staging_dir(name)
    staged.mkdir(parents=True)
    (staged / "metadata.json").write_text('{"pipeline": []}')
    (staged / "component.pkl").write_bytes(payload)
    return store.commit(staged, {"fingerprint": name})


@pytest.fixture
def store(tmp_path) -> ModelStore:
    s = ModelStore(tmp_path / "models", "proj")
    s.ensure()
    return s


def test_commit_writes_checksums_and_moves_into_place(store):
    path = fake_model(store, "model_1")
    meta = json.loads((path / "nlu_ci.json").read_text())
    assert set(meta["files"]) == {"metadata.json", "component.pkl"}
    assert store.models() == ["model_1"]
    assert store.verify("model_1") == []
    assert list((store.dir / ".incoming").iterdir()) == []


def test_verify_finds_corruption_and_missing_files(store):
    path = fake_model(store, "model_1")
    (path / "component.pkl").write_bytes(b"tampered")
    assert any("checksum mismatch" in p for p in store.verify("model_1"))
    (path / "component.pkl").unlink()
    assert any("file missing" in p for p in store.verify("model_1"))
    assert store.verify("model_2") and "missing" in store.verify("model_2")[0]


def test_activate_is_atomic_and_remembers_previous(store):
    fake_model(store, "model_1")
    fake_model(store, "model_2")
    assert store.activate("model_1") is None
    assert store.activate("model_2") == "model_1"
    assert store.active_name() == "model_2" and store.previous_name() == "model_1"
    with pytest.raises(StoreError):
        store.activate("model_9")
    # an incomplete model (no metadata) can never become active
    (store.dir / "model_x").mkdir()
    with pytest.raises(StoreError, match="not a complete model"):
        store.activate("model_x")
    assert store.active_name() == "model_2"
    assert not [p for p in store.dir.iterdir() if p.name.endswith(".tmp")]


WRITER = """
import sys
from nlu_ci.registry.store import ModelStore
store = ModelStore(sys.argv[1], "proj")
print("ready", flush=True)
for i in range(int(sys.argv[2])):
    store.activate(f"model_{1 + i % 2}")
    store.write_report({"run": i, "padding": "x" * 200_000}, f"r{i % 3}")
"""


def test_a_concurrent_reader_never_sees_a_partial_pointer_or_report(store):
    """Another process swaps ACTIVE and rewrites last_report.json (200 kB) over and over while this one
    reads them as fast as it can: every read is a whole old or a whole new version, never a mix."""
    fake_model(store, "model_1")
    fake_model(store, "model_2")
    store.activate("model_1")
    store.write_report({"run": -1, "padding": ""}, "r")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), "300"], stdout=subprocess.PIPE,
                              text=True)
    assert writer.stdout.readline().strip() == "ready"
    pointers, runs, reads = set(), set(), 0
    while writer.poll() is None:
        pointers.add((store.dir / "ACTIVE").read_bytes())
        text = (store.dir / "last_report.json").read_text()
        runs.add(json.loads(text)["run"])  # a partial report is not JSON
        reads += 1
    assert writer.wait() == 0
    assert pointers <= {b"model_1\n", b"model_2\n"}, pointers
    assert len(pointers) == 2 and len(runs) > 10, (pointers, len(runs), reads)  # the reads overlapped the writes


def test_prune_keeps_newest_active_and_previous(store):
    for i in range(1, 7):
        fake_model(store, f"model_{i}")
    store.activate("model_1")
    store.activate("model_2")
    removed = store.prune(2)
    assert removed == ["model_3", "model_4"]
    assert store.models() == ["model_1", "model_2", "model_5", "model_6"]


def test_history_is_append_only_json_lines_and_tolerates_a_torn_line(store):
    store.append_history({"event": "run", "outcome": "promoted"})
    with open(store.dir / "history.jsonl", "a") as fh:
        fh.write('{"event": "run", "outc')  # a torn write from a crash
    store.append_history({"event": "run", "outcome": "rejected"})
    outcomes = [h["outcome"] for h in store.history()]
    assert outcomes == ["promoted", "rejected"]


def test_name_collisions_get_a_suffix(store):
    import datetime as dt

    when = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    fake_model(store, store.new_model_name(when))
    assert store.new_model_name(when) == "model_20261125-000000-1"


def test_lock_is_exclusive_across_processes_and_freed_when_the_holder_dies(store, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from nlu_ci.registry.store import ModelStore
s = ModelStore({str(store.root)!r}, "proj"); s.acquire_lock(); print("locked", flush=True); time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            store.acquire_lock()
    finally:
        holder.kill()  # SIGKILL: no chance to clean up
        holder.wait()
    deadline = time.time() + 5
    while True:
        try:
            store.acquire_lock()
            break
        except LockedError:
            assert time.time() < deadline
            time.sleep(0.05)
    store.release_lock()


def test_ensure_rejects_a_file_as_models_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot create"):
        ModelStore(tmp_path / "file", "p").ensure()


def test_clean_incoming_removes_leftovers(store):
    leftover = store.staging_dir("model_9")
    leftover.mkdir(parents=True)
    (leftover / "half.pkl").write_bytes(b"x" * 10)
    assert store.clean_incoming() == [leftover.parent.name]
    assert not leftover.exists()
    assert os.listdir(store.dir / ".incoming") == []


def test_the_crash_tests_history_check_accepts_a_torn_line_only_at_the_end(tmp_path):
    """support.store_checks.check_history, used after every kill: a torn last line is what a crash may
    leave; a torn line anywhere else (e.g. two entries glued together) is a broken store."""
    from support.store_checks import check_history

    path = tmp_path / "history.jsonl"
    path.write_text('{"a": 1}\n{"b": 2}\n')
    assert check_history(path) is None
    path.write_text('{"a": 1}\n{"b": 2}\n{"c": ')
    assert check_history(path) == 2
    path.write_text('{"a": 1}\n{"c": \n{"d": 4}\n')  # the torn line closed by the next append
    assert check_history(path, torn=frozenset({1})) is None
    for broken in ('{"a": 1}\n{"c": \n{"d": 4}\n', '{"a": 1}{"b": 2}\n{"c": 3}\n', '[1]\n{"a": 1}\n'):
        path.write_text(broken)
        with pytest.raises(AssertionError):
            check_history(path)


def test_rollback_holds_are_kept_atomically_found_by_fingerprint_and_released(tmp_path):
    from nlu_ci.registry import holds

    store = ModelStore(tmp_path, "p")
    store.ensure()
    assert holds.read(store) == [] and holds.find(store, "sha256:x") is None
    holds.add(store, "sha256:aaa", "model_b", "model_a")
    holds.add(store, "sha256:bbb", "model_c", "model_a")
    holds.add(store, "sha256:aaa", "model_b", "model_a")  # again: one hold per fingerprint
    assert [h["fingerprint"] for h in holds.read(store)] == ["sha256:bbb", "sha256:aaa"]
    assert holds.find(store, "sha256:aaa")["model"] == "model_b" and holds.find(store, None) is None
    assert (store.dir / "holds.json").stat().st_mode & 0o777 == 0o640
    assert not list(store.dir.glob(".holds.json.*"))  # written through a temp file, renamed into place
    assert [h["model"] for h in holds.release(store, "model_c")] == ["model_c"]
    assert holds.release(store, "sha256:zzz") == [] and len(holds.read(store)) == 1
    assert [h["fingerprint"] for h in holds.release(store)] == ["sha256:aaa"] and holds.read(store) == []


def test_a_damaged_holds_file_is_a_warning_not_a_failure(tmp_path, caplog):
    from nlu_ci.registry import holds

    store = ModelStore(tmp_path, "p")
    store.ensure()
    for text in ("{not json", '{"holds": 5}', '{"holds": [{"model": "x"}]}', "[]"):
        (store.dir / "holds.json").write_text(text)
        assert holds.read(store) == []
    assert "treating it as no hold" in caplog.text
    holds.add(store, "sha256:aaa", "model_b", "model_a")  # the next rollback rewrites it
    assert holds.find(store, "sha256:aaa")

# ---------------------------------------------------------------- retention by creation, reports (issue 24)

def _created(store: ModelStore, name: str, when: str) -> None:
    meta = json.loads((store.dir / name / "nlu_ci.json").read_text())
    meta["created_at"] = when
    (store.dir / name / "nlu_ci.json").write_text(json.dumps(meta))


def test_prune_orders_by_recorded_creation_and_spares_this_runs_model(store):
    """A clock that ran ahead named two models model_2999...: they are older by their created_at (or, created
    under that clock, from the future): they go first; the model this store committed last is never pruned."""
    for name, when in [("model_20261201-000000", "2026-12-01T00:00:00Z"),
                       ("model_29990101-000000", "2026-11-01T00:00:00Z"),
                       ("model_29990102-000000", "2999-01-02T00:00:00Z"),
                       ("model_20261202-000000", "2026-12-02T00:00:00Z")]:
        fake_model(store, name)
        _created(store, name, when)
    store.activate("model_20261201-000000")
    assert store.last_committed == "model_20261202-000000"
    assert store.prune(2) == ["model_29990102-000000", "model_29990101-000000"]
    assert store.models() == ["model_20261201-000000", "model_20261202-000000"]
    fake_model(store, "model_20261203-000000")
    _created(store, "model_20261203-000000", "2026-11-30T00:00:00Z")  # committed now, recorded as older
    assert "model_20261203-000000" not in store.prune(2)


def test_report_retention_keeps_the_newest_groups(tmp_path):
    from nlu_ci.registry import retention

    reports = tmp_path / "reports"
    reports.mkdir()
    for i in range(6):
        for suffix in (".json", ".predictions.jsonl", ".html"):
            (reports / f"20261202T00000{i}-000000{suffix}").write_text("x")
    (reports / "notes.txt").write_text("not a report")
    assert retention.prune_reports(reports, 2, spare="20261202T000000-000000") == [
        f"20261202T00000{i}-000000" for i in range(1, 4)]
    assert sorted(retention.report_groups(reports)) == ["20261202T000000-000000", "20261202T000004-000000",
                                                        "20261202T000005-000000"]
    assert (reports / "notes.txt").exists()
    assert retention.free_space(reports, 1 << 60) == []  # nothing beyond MIN_REPORTS (3) is ever taken
    (reports / "20261202T000006-000000.json").write_text("x")
    assert retention.free_space(reports, 1 << 60, spare="20261202T000000-000000") == ["20261202T000004-000000"]


def test_history_append_failure_is_a_warning(store):
    from nlu_ci.registry import records

    (store.dir / "history.jsonl").mkdir()
    report: dict = {"warnings": []}
    assert records.append_or_warn(store, {"event": "promotion"}, report) is False
    assert "not recorded in the history" in report["warnings"][0] and len(report["record_failures"]) == 1
