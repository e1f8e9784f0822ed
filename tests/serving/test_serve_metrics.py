"""``GET /metrics`` of a real ``nlu-ci serve`` scraped by a real Prometheus (Debian's binary, on loopback, every
second): parse traffic counted by status and intent, the low-confidence count equal to a count of the answers
done here, and the served-model metric following ``ACTIVE`` through a promotion and a rollback; scrapes during a
swap answer 200."""
from __future__ import annotations

import json
import threading
import time

import pytest
from serving_helpers import TEXTS, WORKERS, Store, http_get, parse, start_model_server, start_rasa, wait_until

from support.servers import PROMETHEUS_BIN, Server

pytestmark = [pytest.mark.slow, pytest.mark.skipif(PROMETHEUS_BIN is None, reason="prometheus not installed")]


class Prometheus(Server):
    """Scrapes one target's /metrics every second."""

    def __init__(self, workdir, target: str):
        workdir.mkdir(parents=True, exist_ok=True)
        config = {"global": {"scrape_interval": "1s"},
                  "scrape_configs": [{"job_name": "nlu-ci-serve", "scrape_interval": "1s", "scrape_timeout": "900ms",
                                      "static_configs": [{"targets": [target]}]}]}
        (workdir / "prometheus.yml").write_text(json.dumps(config))
        super().__init__(lambda port: [PROMETHEUS_BIN, f"--config.file={workdir / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={workdir / 'data'}",
                                       f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                         "/-/ready", workdir / "prometheus.log")

    def query(self, expr: str) -> list[dict]:
        import requests

        body = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def models(self) -> list[str]:
        return sorted(r["metric"]["model"] for r in self.query("nlu_ci_serving_model_info == 1"))


def wait_for(prom: Prometheus, expr: str, expected: float, timeout: float = 20) -> None:
    try:
        wait_until(lambda: prom.value(expr) == expected, timeout, step=0.25, what=f"{expr} == {expected}")
    except AssertionError as err:
        raise AssertionError(f"{err} (it is {prom.value(expr)})") from None


def test_prometheus_sees_traffic_and_the_served_model_follow_active(tmp_path):
    store = Store(tmp_path)
    a = store.run(0)["candidate"]["model"]
    models = start_model_server(store, tmp_path)
    rasa = start_rasa(store, models.url + "/models/default", tmp_path, pull_interval=0.5)
    prom = None
    try:
        prom = Prometheus(tmp_path / "prom", rasa.url.removeprefix("http://"))
        wait_for(prom, 'up{job="nlu-ci-serve"}', 1)
        assert prom.models() == [a]

        answers = [parse(rasa.url, TEXTS[i % len(TEXTS)]) for i in range(40)]
        assert {s for s, _ in answers} == {200}
        bad = [http_get(rasa.url + "/parse?q=%ff")[0] for _ in range(3)]
        assert bad == [400] * 3
        confidences = [body["intent"]["confidence"] for _, body in answers]
        low = sum(c < 0.3 for c in confidences)  # the default --fallback-threshold
        wait_for(prom, 'nlu_ci_serving_parse_requests_total{code="200"}', 40)
        wait_for(prom, 'nlu_ci_serving_parse_requests_total{code="400"}', 3)
        assert prom.value("nlu_ci_serving_parse_duration_seconds_count") == 43
        assert prom.value("nlu_ci_serving_intent_confidence_count") == 40
        assert prom.value("nlu_ci_serving_low_confidence_messages_total") == low
        assert prom.value("nlu_ci_serving_fallback_threshold") == 0.3
        predicted = {}
        for _, body in answers:
            predicted[body["intent"]["name"]] = predicted.get(body["intent"]["name"], 0) + 1
        by_intent = {r["metric"]["intent"]: float(r["value"][1])
                     for r in prom.query("nlu_ci_serving_intent_predictions_total")}
        meta = json.loads((store.models / "default" / a / "nlu_ci.json").read_text())
        assert set(by_intent) == set(meta["data"]["intents"]) | {"other"}  # bounded by the model's intents
        assert {k: v for k, v in by_intent.items() if v} == predicted

        # a promotion, with /metrics scraped every 20 ms meanwhile (here and by Prometheus)
        scrapes: list[int] = []
        stop = threading.Event()

        def scrape():
            while not stop.is_set():
                try:
                    scrapes.append(http_get(rasa.url + "/metrics", timeout=5)[0])
                except OSError:
                    scrapes.append(0)
                time.sleep(0.02)

        scraper = threading.Thread(target=scrape, daemon=True)
        scraper.start()
        try:
            b = store.run(2)["candidate"]["model"]
            wait_until(lambda: prom.models() == [b], 30, step=0.25, what=f"Prometheus sees {b} served")
            assert store.rollback()["active"] == a
            wait_until(lambda: prom.models() == [a], 30, step=0.25, what=f"Prometheus sees {a} served again")
        finally:
            stop.set()
            scraper.join(10)
        assert len(scrapes) > 20 and set(scrapes) == {200}, sorted(set(scrapes))
        assert prom.value('min_over_time(up{job="nlu-ci-serve"}[1m])') == 1
        # A, B, A again, in each of the lean server's workers (each pulls and loads; the counts are summed)
        wait_for(prom, "nlu_ci_serving_model_swaps_total", 3 * WORKERS)
        assert prom.value('nlu_ci_serving_model_pulls_total{result="updated"}') == 3 * WORKERS
        assert prom.value('nlu_ci_serving_model_pulls_total{result="rejected"}') == 0
        assert prom.value("nlu_ci_serving_model_swap_duration_seconds_count") == 3 * WORKERS
        assert prom.value("time() - nlu_ci_serving_last_good_pull_timestamp_seconds") < 10
        assert prom.value("count(nlu_ci_serving_model_info)") == 1
    finally:
        if prom:
            prom.stop()
        rasa.stop()
        models.stop()
