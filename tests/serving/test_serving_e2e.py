"""The loop from the gate to the users, with real parts: real trainings (``nlu-ci run``), the model server
(``nlu-ci serve-models``) and rasa_nlu's own HTTP server (``nlu-ci serve``) on loopback, under a parse load.

The model name in each ``/parse`` answer says which model answered."""
from __future__ import annotations

import pytest
from serving_helpers import (
    ActiveWatcher,
    Load,
    Store,
    http_get,
    parse,
    start_model_server,
    start_rasa,
    wait_until,
)

PULL = 1.0
BOUND = PULL + 2.0  # the bound: a promotion or rollback answers within pull interval + 2 s

pytestmark = pytest.mark.slow


def test_users_get_what_the_gate_decides_with_no_failed_request(tmp_path):
    store = Store(tmp_path)
    first = store.run(0)
    assert first["outcome"] == "promoted"
    a = first["candidate"]["model"]
    model_server = start_model_server(store, tmp_path)
    rasa = start_rasa(store, model_server.url + "/models/default", tmp_path, pull_interval=PULL)
    watcher = ActiveWatcher(store).start()
    load = Load(rasa.url, threads=3).start()
    try:
        assert parse(rasa.url)[1]["model"] == a

        rejected = store.run(1, promote=False)
        assert rejected["outcome"] == "rejected" and store.active() == a
        candidate = rejected["candidate"]["model"]
        after_rejection = wait_until(lambda: load.results and load.results[-1][0], 5)
        # two full pull intervals later every answer still comes from A, never from the rejected candidate
        wait_until(lambda: any(t > after_rejection + 2 * PULL for t, *_ in list(load.results)), 30,
                   what="two pull intervals of answers after the rejected run")
        since = [r for r in list(load.results) if r[0] >= after_rejection]
        assert since and {m for *_, m in since} == {a}

        promoted = store.run(2)
        assert promoted["outcome"] == "promoted"
        b = promoted["candidate"]["model"]
        t_b = watcher.changed_to(b)
        first_b = wait_until(lambda: load.first_answer_by(b, t_b - 1), BOUND + 10, what=f"an answer by {b}")
        assert first_b - t_b <= BOUND, f"{b} answered {first_b - t_b:.2f}s after its promotion (bound {BOUND}s)"

        rolled = store.rollback()
        assert rolled["active"] == a
        t_a = watcher.changed_to(a)
        first_a = wait_until(lambda: load.first_answer_by(a, t_a), BOUND + 10, what=f"an answer by {a} again")
        assert first_a - t_a <= BOUND, f"{a} answered {first_a - t_a:.2f}s after the rollback (bound {BOUND}s)"
        wait_until(lambda: len([r for r in list(load.results) if r[0] > first_a]) > 20, 30)
    finally:
        load.stop()
        watcher.stop()
        rasa.stop()
        model_server.stop()

    results = load.results
    assert len(results) > 100
    assert load.failed() == [], f"{len(load.failed())} failed of {len(results)}: {load.failed()[:3]}"
    assert candidate not in {m for *_, m in results}
    # once the new model answered, the old one never answers again (no flip-flop between replicas of the state)
    assert not [r for r in results if r[0] > first_b and r[0] < t_a and r[3] != b]
    assert not [r for r in results if r[0] > first_a and r[3] != a]
    # the server's own temporary copies: only the model it serves was left while it ran (removed at exit)
    assert not list(tmp_path.glob("nlu-ci-pulled-*")), list(tmp_path.glob("nlu-ci-pulled-*"))


def test_serve_without_a_model_url_is_a_usage_error(tmp_path):
    from support.data import cli_env, run_cli

    res = run_cli(["serve", "--port", "1"], cli_env(tmp_path / "m"), timeout=60)
    assert res.code == 2 and "--model-url" in res.stderr and "Traceback" not in res.output
    res = run_cli(["serve", "--model-url", "ftp://x/models/default"], cli_env(tmp_path / "m"), timeout=60)
    assert res.code == 2 and "must start with http" in res.stderr


def test_rasa_server_before_any_model_is_not_ready(tmp_path):
    """No active model yet (404 from the model server): rasa_nlu answers with its keyword fallback, so the
    readiness probe must keep traffic away until a real model is pulled."""
    store = Store(tmp_path)
    (store.models / "default").mkdir(parents=True)
    model_server = start_model_server(store, tmp_path)
    try:
        assert http_get(model_server.url + "/models/default")[0] == 404
        from serving_helpers import free_port, start

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        rasa = start(["serve", "--host", "127.0.0.1", "--port", str(port), "--model-url",
                      model_server.url + "/models/default", "--pull-interval", "1"],
                     store.env(TMPDIR=str(tmp_path)), tmp_path / "rasa.log", url, "/version")
        try:
            status, _, body = http_get(url + "/ready")
            assert status == 503 and b'"ready": false' in body
            first = store.run(0)
            a = first["candidate"]["model"]
            wait_until(lambda: http_get(url + "/ready")[0] == 200, BOUND + 10, what="ready after the first promotion")
            assert parse(url)[1]["model"] == a
        finally:
            rasa.stop()
    finally:
        model_server.stop()


def test_the_stock_pipelines_pickles_load_in_the_server_process(tmp_path):
    """rasa_nlu's stock components (SklearnIntentClassifier, CRFEntityExtractor: pickles that import
    sklearn.externals.joblib) load in ``nlu-ci serve`` because nlu-ci's compat shims are applied there, and
    answer concurrent requests without errors."""
    from support.data import FAST_CONFIG

    store = Store(tmp_path)
    store.config.write_text(FAST_CONFIG)
    a = store.run(0)["candidate"]["model"]
    assert any(p.suffix == ".pkl" for p in (store.models / "default" / a).iterdir())
    model_server = start_model_server(store, tmp_path)
    try:
        rasa = start_rasa(store, model_server.url + "/models/default", tmp_path, pull_interval=PULL)
        try:
            status, body = parse(rasa.url, "i want a large pizza")
            assert status == 200 and body["model"] == a and body["intent"]["name"] == "order_pizza"
            assert any(e["entity"] == "size" and e["value"] == "large" for e in body["entities"])
            # concurrent requests: rasa_nlu's CRFEntityExtractor shares one crfsuite tagger between threads
            # (serving.threadsafe); without the lock some of these answer 500 "The position, N is out of range"
            load = Load(rasa.url, threads=4, max_requests=1500).start()
            wait_until(lambda: len(load.results) >= 1500, 300, step=0.2, what="1500 answers")
            load.stop()
            assert load.failed() == [] and {m for *_, m in load.results} == {a}
        finally:
            rasa.stop()
    finally:
        model_server.stop()
