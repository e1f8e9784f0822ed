"""Several runs on one store at once: exactly one trains, the others end at once with outcome ``locked``
(exit 0); a lock left by a killed run is taken over by the next run (the kernel dropped the flock) and its
leftovers are removed; a lock file naming a dead holder is no obstacle, a live holder always is."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys

from .helpers import ROOT, Harness, check_store_invariants


def start(h: Harness, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", "run", "--json"], env=h.env(**extra), cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_until(proc: subprocess.Popen, needle: str) -> list[str]:
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"run ended before {needle!r}: {''.join(lines)[-2000:]}")


def finish(h: Harness, proc: subprocess.Popen, head: list[str] | None = None):
    from .helpers import Run

    out, err = proc.communicate(timeout=300)
    run = Run(proc.returncode, out, "".join(head or []) + err, 0.0, json.loads(out) if out.strip() else None)
    h.runs.append(run)
    return run


def test_runs_started_together_exactly_one_trains(harness):
    h = harness()
    before = h.active()
    procs = [start(h) for _ in range(4)]
    runs = [finish(h, p) for p in procs]
    outcomes = sorted(r.report["outcome"] for r in runs)
    assert all(r.code == 0 for r in runs), [r.output[-1500:] for r in runs]
    trained = [r for r in runs if "stage train: started" in r.stderr]
    assert len(trained) == 1, outcomes
    assert trained[0].report["outcome"] == "promoted"
    # the others were locked out (or, slowed down by the machine, came after and found the work done)
    assert set(outcomes) - {"promoted"} <= {"locked", "skipped"} and outcomes.count("promoted") == 1, outcomes
    for r in runs:
        if r.report["outcome"] == "locked":
            assert "is locked by another run (pid" in r.report["error"] and "\n" not in r.report["error"]
    active = check_store_invariants(h.models, h.project)
    assert active == trained[0].report["candidate"]["model"] != before
    history = [json.loads(line) for line in (h.store / "history.jsonl").read_text().splitlines() if line.strip()]
    assert sum(1 for e in history if e.get("event") == "promotion") == 2  # the seed's and this one
    h.scan_secrets()


def test_runs_arriving_during_training_are_locked(harness):
    """The first run is stopped (SIGSTOP) in the middle of training, as a slow node would stall it; three runs
    arriving meanwhile are refused at once (locked, holder named); resumed, the first run finishes and promotes."""
    h = harness()
    first = start(h)
    head = read_until(first, "stage train: started")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        late = [start(h) for _ in range(3)]
        late_runs = [finish(h, p) for p in late]
        assert first.poll() is None
    finally:
        os.kill(first.pid, signal.SIGCONT)
    main = finish(h, first, head)
    assert main.code == 0 and main.report["outcome"] == "promoted", main.output[-2000:]
    for r in late_runs:
        assert r.code == 0 and r.report["outcome"] == "locked", r.output[-1500:]
        assert f"pid {first.pid}" in r.report["error"] and "\n" not in r.report["error"]  # the holder is named
        assert "stage train" not in r.stderr
        assert r.report["durations"]["total"] < 5
    check_store_invariants(h.models, h.project)
    history = [json.loads(line) for line in (h.store / "history.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in history if e.get("event") == "run"][-1] == "promoted"  # locked runs write nothing
    assert h.pushed_outcome().get("promoted") == 1.0  # the last push is the run that did the work
    h.scan_secrets()


def test_lock_of_a_killed_run_is_taken_over(harness):
    """kill -9 while the candidate is evaluated: the .lock file still names the dead run and .incoming holds its
    unfinished model. The next run takes the lock (the kernel released the flock with the process), removes
    the leftovers, trains and promotes; the active model was never touched in between."""
    h = harness()
    before = h.active()
    victim = start(h)
    head = read_until(victim, "stage evaluate: started")
    os.kill(victim.pid, signal.SIGKILL)
    out, err = victim.communicate(timeout=60)
    from .helpers import Run

    h.runs.append(Run(victim.returncode, out, "".join(head) + err, 0.0))  # scanned for secrets too
    assert victim.returncode == -signal.SIGKILL
    assert f"pid {victim.pid}" in (h.store / ".lock").read_text()  # the dead holder is still written there
    assert any((h.store / ".incoming").iterdir()), "the killed run left its unfinished model"
    assert check_store_invariants(h.models, h.project) == before

    r = h.run(["run", "--json"])
    assert r.code == 0 and r.report["outcome"] == "promoted", r.output[-2000:]
    assert "unfinished item(s) left in" in r.stderr
    assert list((h.store / ".incoming").iterdir()) == []
    assert check_store_invariants(h.models, h.project) == r.report["candidate"]["model"]
    assert (h.store / ".lock").read_text() == ""  # released
    h.scan_secrets()


def test_a_live_holder_is_never_taken_over(harness):
    """Whatever the lock file says, a process that holds the flock keeps the store (no timeout-based stealing)."""
    h = harness()
    before = h.active()
    lock_path = h.store / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"pid 999999 on some-old-pod since 2020-01-01T00:00:00Z", 0)
        r = h.run(["run", "--json"])
        assert r.code == 0 and r.report["outcome"] == "locked", r.output[-2000:]
        assert "some-old-pod" in r.report["error"]
        assert h.active() == before
    finally:
        os.close(fd)
    r = h.run(["run", "--json"])  # released: the next run proceeds
    assert r.code == 0 and r.report["outcome"] == "promoted", r.output[-2000:]
    h.scan_secrets()
