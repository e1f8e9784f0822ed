"""The lean server's workers (``serving/lean_server.py``), a real ``nlu-ci serve --workers 2`` pulling from a real
``nlu-ci serve-models``: connections go to both workers in turn (each writes its own query log file, as rasa_nlu's
DataRouter does per process), a worker killed is replaced while the others answer and its counts stay in
``/metrics``, and SIGTERM stops the supervisor and every worker."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import psutil
import pytest
from serving_helpers import TEXTS, Store, free_port, http_get, parse, start, start_model_server, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("workers")
    store = Store(tmp)
    model = store.run(0)["candidate"]["model"]
    models = start_model_server(store, tmp)
    port = free_port()
    folder = tmp / "queries"
    server = start(["serve", "--server", "lean", "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
                    "--model-url", models.url + "/models/default", "--pull-interval", "1", "--query-log", str(folder)],
                   store.env(TMPDIR=str(tmp)), tmp / "lean.log", f"http://127.0.0.1:{port}", "/ready")
    try:
        yield server, model, folder
    finally:
        server.stop()
        models.stop()


def workers(server) -> list[int]:
    return sorted(p.pid for p in psutil.Process(server.proc.pid).children() if p.status() != psutil.STATUS_ZOMBIE)


def metric(url: str, name: str) -> float:
    text = http_get(url + "/metrics")[2].decode()
    m = re.search(rf"^{re.escape(name)} ([\d.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_both_workers_answer_each_in_its_own_query_log_file(served):
    server, model, folder = served
    pids = workers(server)
    assert len(pids) == 2
    answers = [parse(server.url, TEXTS[i % len(TEXTS)]) for i in range(20)]  # one connection each: in turn
    assert {s for s, _ in answers} == {200} and {b["model"] for _, b in answers} == {model}
    by_pid: dict[int, int] = {}
    for f in folder.glob("rasa_nlu_log-*.log"):
        pid = int(re.fullmatch(r"rasa_nlu_log-\d{8}-\d{6}-(\d+)(?:-\d+)?\.log", f.name).group(1))
        by_pid[pid] = by_pid.get(pid, 0) + len(f.read_text().splitlines())
    assert set(by_pid) == set(pids) and sum(by_pid.values()) == 20
    assert min(by_pid.values()) >= 8, by_pid  # round robin: 10 each (give or take the /ready probes' order)
    assert all(json.loads(line)["user_input"]["model"] == model
               for f in folder.glob("rasa_nlu_log-*.log") for line in f.read_text().splitlines())


def test_a_killed_worker_is_replaced_and_its_counts_stay(served):
    server, model, _ = served
    for i in range(10):
        assert parse(server.url, TEXTS[i % len(TEXTS)])[0] == 200
    before = metric(server.url, 'nlu_ci_serving_parse_requests_total{code="200"}')
    assert before >= 10
    old = workers(server)
    os.kill(old[0], signal.SIGKILL)  # (a connection handed to it in the moment it dies is lost with it)
    wait_until(lambda: f"worker {old[0]} stopped (signal 9), starting another" in server.log_text(), 10,
               what="the log line")
    # once the supervisor knows, the other worker answers until the new one has its model: no request fails
    for i in range(10):
        assert parse(server.url, TEXTS[i % len(TEXTS)])[1]["model"] == model
    def replaced():
        now = workers(server)
        return now if len(now) == 2 and old[0] not in now else None

    new = wait_until(replaced, 30, what="a new worker")
    assert old[1] in new
    # the new worker is handed connections once it has its model
    wait_until(lambda: sum(parse(server.url)[1].get("model") == model for _ in range(6)) == 6, 60,
               what="answers from both workers")
    assert metric(server.url, 'nlu_ci_serving_parse_requests_total{code="200"}') >= before + 10 + 6
    assert "Traceback" not in server.log_text()


def test_sigterm_stops_the_supervisor_and_every_worker(served):
    server, _, _ = served
    pids = workers(server)
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 10
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert "lean server on" in server.log_text() and "stopped" in server.log_text()
