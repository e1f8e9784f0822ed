"""The serving metrics of ``nlu-ci serve`` (``GET /metrics``), in one explicit ``CollectorRegistry`` per server.

What users send and what the served model answers: ``/parse`` requests by status code and their latency; the
served model (``nlu_ci_serving_model_info{project,model}``, exactly one series with value 1 once a model is
loaded); predicted intents by intent (labelled only with intents the served model knows, from its
``nlu_ci.json``, else ``other``: the label set is bounded by the model, never by what clients send); the intent
confidence; messages below the fallback threshold; model pulls by result, the time of the last good pull, swaps and
their duration. Names and labels are listed in docs/serving.md.

Updates take a lock of their own (never the model's): a scrape during a swap is answered at once.

Several worker processes (the lean server, ``lean_server``): with ``PROMETHEUS_MULTIPROC_DIR`` set before the
metrics are made, prometheus_client's multiprocess mode keeps each process's values in files there and a scrape of
any worker sums them (``MultiProcessCollector``): counters and histograms add up over the workers (a worker that
died keeps its counts), the gauges are ``livemax`` (the served model, the threshold, the last good pull: the
newest among live workers). A model that is no longer served is set to 0 (its file entry cannot be removed) and
left out of the answer, so ``nlu_ci_serving_model_info`` still has one series per served model, value 1.
"""
from __future__ import annotations

import os
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "nlu_ci_serving"
OTHER = "other"
PULL_RESULTS = ("updated", "unchanged", "failed", "rejected")  # rejected: the pulled model failed verification
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
SWAP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServingMetrics:
    def __init__(self, project: str = "default", fallback_threshold: float = 0.3):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        live = "livemax"  # multiprocess mode only: the newest value among live workers
        self.project, self.fallback_threshold = project, fallback_threshold
        self._lock = threading.Lock()
        self._known: frozenset[str] = frozenset()
        self._model: str | None = None
        self.requests = Counter(f"{PREFIX}_parse_requests", "/parse requests by HTTP status code", ["code"], registry=r)
        self.latency = Histogram(f"{PREFIX}_parse_duration_seconds", "/parse latency, seconds (request to answer)",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.model_info = Gauge(f"{PREFIX}_model_info", "the model this server answers with (value 1)",
                                ["project", "model"], registry=r, multiprocess_mode=live)
        self.intents = Counter(f"{PREFIX}_intent_predictions", "predicted intents ('other': not an intent of the "
                               "served model)", ["intent"], registry=r)
        self.confidence = Histogram(f"{PREFIX}_intent_confidence", "confidence of the predicted intent",
                                    buckets=CONFIDENCE_BUCKETS, registry=r)
        self.low_confidence = Counter(f"{PREFIX}_low_confidence_messages", "messages whose intent confidence is "
                                      "below the fallback threshold", registry=r)
        self.parsed = Counter(f"{PREFIX}_parsed_messages", "messages the served model parsed", registry=r)
        self.threshold = Gauge(f"{PREFIX}_fallback_threshold", "the fallback threshold (--fallback-threshold)",
                               registry=r, multiprocess_mode=live)
        self.threshold.set(fallback_threshold)
        self.pulls = Counter(f"{PREFIX}_model_pulls", "model pulls by result (updated, unchanged, failed, "
                             "rejected: did not match its checksums)", ["result"], registry=r)
        self.last_good_pull = Gauge(f"{PREFIX}_last_good_pull_timestamp_seconds", "time of the last pull that got an "
                                    "answer (a new model or 'unchanged')", registry=r, multiprocess_mode=live)
        self.swaps = Counter(f"{PREFIX}_model_swaps", "models loaded and switched to", registry=r)
        self.swap_duration = Histogram(f"{PREFIX}_model_swap_duration_seconds", "time to load a pulled model and "
                                       "switch to it, seconds", buckets=SWAP_BUCKETS, registry=r)
        for code in ("200", "400", "404", "413", "500"):
            self.requests.labels(code=code)
        for result in PULL_RESULTS:
            self.pulls.labels(result=result)
        self.intents.labels(intent=OTHER)

    # -- the served model
    def served(self, model: str | None, intents=None) -> None:
        """The model now answering; ``intents``: the ones it knows (None: unknown, or as before for the same model)."""
        with self._lock:
            if model != self._model:
                if self._model is not None:
                    self.model_info.labels(project=self.project, model=self._model).set(0)  # multiprocess files
                    self.model_info.remove(self.project, self._model)
                if model is not None:
                    self.model_info.labels(project=self.project, model=model).set(1)
                self._model = model
                self._known = frozenset()
            if intents is None:
                return
            self._known = frozenset(str(i) for i in intents)
            for intent in self._known:
                self.intents.labels(intent=intent)

    def served_name(self, model: str | None) -> None:
        """The served model as seen at a scrape; its intents stay unknown (``other``) unless ``served`` said them."""
        if model != self._model:
            self.served(model)

    def swapped(self, seconds: float) -> None:
        self.swaps.inc()
        self.swap_duration.observe(seconds)

    def pulled(self, result: str) -> None:
        self.pulls.labels(result=result).inc()
        if result in ("updated", "unchanged"):
            self.last_good_pull.set(time.time())

    # -- requests
    def request(self, status: int, seconds: float) -> None:
        self.requests.labels(code=str(int(status or 0))).inc()
        self.latency.observe(seconds)

    def answer(self, response: dict) -> None:
        intent = response.get("intent") if isinstance(response, dict) else None
        if not isinstance(intent, dict):
            return
        name, confidence = intent.get("name"), intent.get("confidence")
        self.parsed.inc()
        self.intents.labels(intent=name if name in self._known else OTHER).inc()
        if isinstance(confidence, (int, float)):
            self.confidence.observe(float(confidence))
            if confidence < self.fallback_threshold:
                self.low_confidence.inc()

    def text(self) -> bytes:
        """The exposition text: this registry, or in multiprocess mode the sum over every worker's files."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(_Served(self.multiprocess_dir))
        return generate_latest(registry)

    def render(self, request) -> bytes:
        """The ``GET /metrics`` answer (twisted request)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode())
        return self.text()


class _Served:
    """prometheus_client's ``MultiProcessCollector``, without the model_info series of models no longer served."""

    def __init__(self, path: str):
        from prometheus_client.multiprocess import MultiProcessCollector

        self.inner = MultiProcessCollector(None, path)

    def collect(self):
        for family in self.inner.collect():
            if family.name == f"{PREFIX}_model_info":
                family.samples = [s for s in family.samples if s.value]
            yield family
