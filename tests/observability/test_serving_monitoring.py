"""A real Prometheus scrapes a real ``nlu-ci serve-models`` over a store trained by the real CLI, and a stand-in
for ``nlu-ci serve``'s ``/metrics`` (the ``serve`` helper's /metrics is not in this branch: a tiny static endpoint
exposes the names of docs/serving-monitoring.md, ``nlu_ci_serving_model_info{project, model}`` among them), and
loads monitoring/alerts.rules.yml. A rollback makes ACTIVE name another model while the stand-in still serves the
old one: the expression of NluCiServedModelNotActive returns that pod and the alert goes pending; once the pod
serves the active model, both clear. Every panel of the dashboard's Serving row returns data."""
from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from support.servers import MONITORING, PROMETHEUS_BIN, Prometheus, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from dashboard_check import load_dashboard, serving_targets  # noqa: E402
from serving_helpers import Store, start_model_server  # noqa: E402

spec = importlib.util.spec_from_file_location("monitoring_generate", MONITORING / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)

pytestmark = pytest.mark.skipif(PROMETHEUS_BIN is None, reason="prometheus not installed")


class FakeServeMetrics:
    """``GET /metrics`` as a rasa-nlu pod of ``nlu-ci serve`` exports it; counters grow at every scrape."""

    def __init__(self):
        self.model = None
        self.scrapes = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                body = outer.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def text(self) -> str:
        self.scrapes += 1
        n = self.scrapes
        now = time.time()
        lines = [f'nlu_ci_serving_model_info{{project="default",model="{self.model}"}} 1',
                 f'nlu_ci_serving_parse_requests_total{{code="200"}} {100 * n}',
                 f'nlu_ci_serving_parse_requests_total{{code="500"}} {n}',
                 f'nlu_ci_serving_intent_predictions_total{{intent="greet"}} {60 * n}',
                 f'nlu_ci_serving_intent_predictions_total{{intent="order_pizza"}} {40 * n}',
                 f"nlu_ci_serving_low_confidence_messages_total {5 * n}",
                 f'nlu_ci_serving_model_pulls_total{{result="not_modified"}} {n}',
                 f"nlu_ci_serving_last_good_pull_timestamp_seconds {now - 3}"]
        for le, share in (("0.05", 0.9), ("0.1", 0.99), ("0.5", 1.0), ("+Inf", 1.0)):
            lines.append(f'nlu_ci_serving_parse_duration_seconds_bucket{{le="{le}"}} {int(101 * n * share)}')
        lines += [f"nlu_ci_serving_parse_duration_seconds_count {101 * n}",
                  f"nlu_ci_serving_parse_duration_seconds_sum {3.0 * n}",
                  f"nlu_ci_serving_intent_confidence_count {100 * n}",
                  f"nlu_ci_serving_intent_confidence_sum {80.0 * n}"]
        return "\n".join(lines) + "\n"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class ServingPrometheus(Prometheus):
    """Prometheus scraping the model server and the rasa-nlu stand-in every second, as the PodMonitor of
    k8s/components/serving-monitoring does (job = the pod's app.kubernetes.io/name, a namespace label)."""

    def __init__(self, workdir: Path, model_server: str, serve: str):
        workdir.mkdir(parents=True, exist_ok=True)
        jobs = [("nlu-ci-model-server", model_server, "nlu-ci-model-server-0"), ("rasa-nlu", serve, "rasa-nlu-0")]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(MONITORING / "alerts.rules.yml")],
            "scrape_configs": [{"job_name": job, "scrape_interval": "1s", "static_configs": [
                {"targets": [target], "labels": {"namespace": "nlu-ci", "pod": pod}}]} for job, target, pod in jobs],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))

        def args(port: int) -> list[str]:
            return [PROMETHEUS_BIN, f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d", "--log.level=warn"]

        Server.__init__(self, args, "/-/ready", workdir / "prometheus.log")


def alert_rule(name: str) -> dict:
    return next(r for g in generate.rules()["groups"] for r in g["rules"] if r.get("alert") == name)


def test_served_differs_from_active_on_a_real_scrape(tmp_path):
    (tmp_path / "store").mkdir()
    store = Store(tmp_path / "store")
    a = store.run(0)["candidate"]["model"]
    b = store.run(2)["candidate"]["model"]
    assert store.active() == b
    model_server = start_model_server(store, tmp_path)
    serve = FakeServeMetrics()
    serve.model = b
    prom = None
    try:
        prom = ServingPrometheus(tmp_path / "prom", model_server.url.removeprefix("http://"), f"127.0.0.1:{serve.port}")
        expr = alert_rule("NluCiServedModelNotActive")["expr"]
        prom.wait_for(f'nlu_ci_model_server_active_model_info{{model="{b}"}}', lambda r: len(r) == 1)
        prom.wait_for(f'nlu_ci_serving_model_info{{model="{b}"}}', lambda r: len(r) == 1)
        assert prom.query(expr) == []

        # a rollback: ACTIVE names A; the pod's pull is "broken" (it still serves B)
        store.rollback()  # the real `nlu-ci rollback`
        assert store.active() == a
        found = prom.wait_for(expr, lambda r: len(r) == 1)
        labels = found[0]["metric"]
        assert (labels["project"], labels["model"], labels["pod"], labels["namespace"]) == ("default", b, "rasa-nlu-0",
                                                                                           "nlu-ci")
        alerts = prom.wait_for('ALERTS{alertname="NluCiServedModelNotActive"}', lambda r: len(r) == 1)
        assert alerts[0]["metric"]["alertstate"] == "pending" and alerts[0]["metric"]["model"] == b

        # the pod swaps to the active model: nothing differs any more
        serve.model = a
        prom.wait_for(expr, lambda r: r == [])
        prom.wait_for('ALERTS{alertname="NluCiServedModelNotActive"}', lambda r: r == [])

        # the serving rules evaluate cleanly on real series
        groups = {g["name"]: g for g in prom.api("rules")["groups"]}
        assert all(r["health"] == "ok" for r in groups["nlu-ci-serving"]["rules"]), groups["nlu-ci-serving"]
        # every target of the dashboard's Serving row has data (rates need two scrapes of growing counters)
        time.sleep(3)
        empty = []
        for panel, target in serving_targets(load_dashboard()):
            if not prom.query(target["expr"].replace("$project", "default")):
                empty.append((panel["title"], target["refId"], target["expr"]))
        assert not empty, empty
    finally:
        if prom is not None:
            prom.stop()
        serve.stop()
        model_server.stop()
