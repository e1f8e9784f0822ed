"""kill -9 of the job at moments around its store and promote stages never makes the model server serve a half
model or a candidate: while runs are killed, a client pulls without pause and checks every zip it gets."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from serving_helpers import ROOT, Store, http_get, start_model_server, write_data, zip_is_complete_model

pytestmark = pytest.mark.slow

# (log line to wait for, extra seconds before the SIGKILL)
KILL_POINTS = [
    ("stage store: started", 0.0),
    ("stage store: started", 0.03),
    ("stage promote: started", 0.0),
    ("stage promote: started", 0.005),
    ("stage retention: started", 0.0),
    ("stage decide:", 0.0),
]


def killed_run(store: Store, variant: int, needle: str, delay: float) -> tuple[bool, list[str]]:
    """Start ``nlu-ci run`` (promoting), SIGKILL it ``delay`` s after ``needle`` appears in its log."""
    data = write_data(store.root / f"data_{variant}.json", store.examples[: len(store.examples) - variant])
    env = store.env(NLU_CI_DATA=str(data), NLU_CI_POLICY=str(store.root / "promote_all.yml"))
    proc = subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=str(ROOT))
    lines, killed = [], False
    deadline = time.monotonic() + 600
    for line in proc.stderr:
        lines.append(line)
        if needle in line:
            if delay:
                time.sleep(delay)  # the moment of the kill, not a proof of anything
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        if time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait(timeout=30)
    proc.stderr.close()
    return killed, lines


def test_sigkill_around_promotion_never_serves_a_half_model_or_a_candidate(tmp_path):
    store = Store(tmp_path)
    a = store.run(0)["candidate"]["model"]
    ever_active = {a}
    server = start_model_server(store, tmp_path)
    url = server.url + "/models/default"
    seen: list[tuple[int, str, list[str], str]] = []  # (status, model, problems, ACTIVE after the answer)
    stop = threading.Event()

    def pull_without_pause() -> None:
        while not stop.is_set():
            status, headers, body = http_get(url, timeout=30)
            name, problems = zip_is_complete_model(body) if status == 200 else (None, [])
            seen.append((status, name, problems, headers.get("filename")))
            ever_active.add(store.active())

    puller = threading.Thread(target=pull_without_pause, daemon=True)
    puller.start()
    kills = 0
    try:
        for i, (needle, delay) in enumerate(KILL_POINTS, start=1):
            killed, lines = killed_run(store, i, needle, delay)
            kills += killed
            active = store.active()
            ever_active.add(active)
            status, headers, body = http_get(url)
            assert status == 200, body
            assert zip_is_complete_model(body) == (active, []) and headers["filename"] == f"{active}.zip"
    finally:
        stop.set()
        puller.join(timeout=60)
        server.stop()

    assert kills == len(KILL_POINTS)
    committed = {p.name for p in (store.models / "default").iterdir() if p.name.startswith("model_")}
    candidates = committed - ever_active  # stored by a killed run, never made active
    assert candidates, "no kill landed between store and promote: the test did not test the candidate case"
    assert len(seen) > 20
    assert {s for s, *_ in seen} == {200}
    assert [s for s in seen if s[2]] == []  # every zip complete, every file's sha256 as recorded
    served = {name for _, name, _, _ in seen}
    assert served <= ever_active and not served & candidates
    assert all(fn == f"{name}.zip" for _, name, _, fn in seen)
