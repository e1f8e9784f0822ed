"""A real Prometheus scrapes a real ``nlu-ci serve-models`` and a real ``nlu-ci serve`` (rasa-nlu's pod) over a store
trained by the real CLI, with client traffic, and loads monitoring/alerts.rules.yml. ``serve`` pulls its model
through a second ``serve-models`` process over the same store; stopping that one breaks the pod's pull (as a
NetworkPolicy or a dead model-server pod would) while Prometheus still sees ACTIVE from the first. A rollback then
makes ACTIVE name another model while the pod still serves the old one: the expression of
NluCiServedModelNotActive returns that pod and the alert goes pending; once the pull works again the pod swaps to
the active model and both clear. Every panel of the dashboard's Serving row returns data from the real series."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from support.servers import MONITORING, PROMETHEUS_BIN, Prometheus, Server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
from dashboard_check import load_dashboard, serving_targets  # noqa: E402
from serving_helpers import Server as ServingProcess  # noqa: E402
from serving_helpers import Store, free_port, parse, start, start_model_server, start_rasa  # noqa: E402


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load("monitoring_generate", MONITORING / "generate.py")
preview = _load("monitoring_preview", MONITORING / "preview.py")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = os.environ.get("NLU_CI_DASHBOARD_SCREENSHOT")  # scripts: write the picture for docs/ here

pytestmark = pytest.mark.skipif(PROMETHEUS_BIN is None, reason="prometheus not installed")


class ServingPrometheus(Prometheus):
    """Prometheus scraping the model server and the rasa-nlu pod every second, as the PodMonitor of
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


def start_serve_models_on(store: Store, tmp: Path, port: int, name: str) -> ServingProcess:
    return start(["serve-models", "--host", "127.0.0.1", "--port", str(port), "--zip-cache", str(tmp / f"zips_{name}")],
                 store.env(), tmp / f"{name}.log", f"http://127.0.0.1:{port}", "/health")


class Traffic:
    """A client sending /parse to the served model until stopped (answers by status)."""

    def __init__(self, url: str):
        self.url, self.codes, self._stop = url, {}, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        texts = ["i want a large pizza", "hello there", "zzqx blorp", "bye"]
        i = 0
        while not self._stop.is_set():
            status, _ = parse(self.url, texts[i % len(texts)], timeout=5)
            self.codes[status] = self.codes.get(status, 0) + 1
            i += 1
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self.thread.join(timeout=10)


def render_serving_row(prometheus: str, page: Path) -> dict:
    """The dashboard's Serving row drawn from the live Prometheus (monitoring/preview.py: Grafana is not packaged
    here), opened in headless chromium: errors, and per panel its series, drawn marks and size."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make install-system)")
    page.write_text(preview.preview(load_dashboard(), prometheus, "Serving", {"project": "default"}, 60, 1))
    seen: dict = {"console_errors": [], "page_errors": []}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 900})
            tab.on("console", lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            tab.goto(page.as_uri(), wait_until="load")
            seen["panels"] = tab.eval_on_selector_all("section.panel", """els => els.map(e => {
                const r = e.getBoundingClientRect();
                const marks = [...e.querySelectorAll('.series')].filter(m => {
                    const b = m.getBoundingClientRect(); return (b.width > 0 || b.height > 0) &&
                        Number(m.getAttribute('data-points')) > 0; }).length;
                return {title: e.querySelector('h2').textContent, series: Number(e.dataset.series), marks,
                        h: r.height}; })""")
            seen["text"] = tab.inner_text("body")
            if SCREENSHOT:
                tab.screenshot(path=SCREENSHOT, full_page=True)
        finally:
            browser.close()
    return seen


def test_served_differs_from_active_on_a_real_scrape(tmp_path):
    (tmp_path / "store").mkdir()
    store = Store(tmp_path / "store")
    a = store.run(0)["candidate"]["model"]
    b = store.run(2)["candidate"]["model"]
    assert store.active() == b
    model_server = start_model_server(store, tmp_path)  # what Prometheus scrapes: ACTIVE
    pull_port = free_port()
    pull_server = start_serve_models_on(store, tmp_path, pull_port, "pull_server")  # what the pod pulls from
    serve = start_rasa(store, f"http://127.0.0.1:{pull_port}/models/default", tmp_path, pull_interval=0.5)
    traffic = Traffic(serve.url)
    prom = None
    try:
        prom = ServingPrometheus(tmp_path / "prom", model_server.url.removeprefix("http://"),
                                 serve.url.removeprefix("http://"))
        expr = alert_rule("NluCiServedModelNotActive")["expr"]
        prom.wait_for(f'nlu_ci_model_server_active_model_info{{model="{b}"}}', lambda r: len(r) == 1)
        prom.wait_for(f'nlu_ci_serving_model_info{{model="{b}"}}', lambda r: len(r) == 1)
        assert prom.query(expr) == []

        # the pod's pull breaks, then a rollback: ACTIVE names A while the pod still serves B
        pull_server.stop()
        store.rollback()  # the real `nlu-ci rollback`
        assert store.active() == a
        prom.wait_for(f'nlu_ci_model_server_active_model_info{{model="{a}"}}', lambda r: len(r) == 1)
        found = prom.wait_for(expr, lambda r: len(r) == 1)
        labels = found[0]["metric"]
        assert (labels["project"], labels["model"], labels["pod"], labels["namespace"]) == ("default", b, "rasa-nlu-0",
                                                                                           "nlu-ci")
        alerts = prom.wait_for('ALERTS{alertname="NluCiServedModelNotActive"}', lambda r: len(r) == 1)
        assert alerts[0]["metric"]["alertstate"] == "pending" and alerts[0]["metric"]["model"] == b
        prom.wait_for('nlu_ci_serving_model_pulls_total{result="failed"}', lambda r: r and float(r[0]["value"][1]) > 0)
        assert parse(serve.url)[0] == 200  # still answering with B meanwhile

        # the pull works again: the pod swaps to the active model and nothing differs any more
        pull_server = start_serve_models_on(store, tmp_path, pull_port, "pull_server_again")
        prom.wait_for(f'nlu_ci_serving_model_info{{model="{a}"}}', lambda r: len(r) == 1)
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
        assert traffic.codes.get(200, 0) > 10, traffic.codes
        drawn = render_serving_row(prom.url, tmp_path / "serving-row.html")
        assert drawn["console_errors"] == [] and drawn["page_errors"] == [], drawn
        titles = [p["title"] for p in preview.panels_of(load_dashboard(), "Serving")]
        assert [p["title"] for p in drawn["panels"]] == titles
        assert all(p["series"] > 0 and p["marks"] == p["series"] and p["h"] > 100 for p in drawn["panels"]), drawn["panels"]
        assert "No data" not in drawn["text"]
        assert a in drawn["text"]  # the served-model table names the model now served
    finally:
        traffic.stop()
        if prom is not None:
            prom.stop()
        serve.stop()
        pull_server.stop()
        model_server.stop()
