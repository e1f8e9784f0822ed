"""``GET /metrics`` of ``nlu-ci serve-models``: prometheus_client metrics in a registry of the server's own.

* ``nlu_ci_model_server_requests_total{route, code}`` and ``nlu_ci_model_server_request_duration_seconds{route}``:
  every answer, ``route`` one of ``ROUTES`` (bounded: a path never becomes a label);
* ``nlu_ci_model_server_active_model_info{project, model}``: the model each project's ``ACTIVE`` names, read from
  the store at scrape time (what a rasa_nlu puller would get now); a project without a readable ACTIVE has none;
* ``nlu_ci_model_server_store_up``: 1 while the store can be read, else 0;
* ``nlu_ci_model_server_zip_builds_total{project, result}`` (``built`` / ``damaged`` / ``failed``) and
  ``nlu_ci_model_server_zip_build_duration_seconds``;
* ``nlu_ci_model_server_open_connections`` and ``nlu_ci_model_server_dropped_connections_total{reason}``
  (``timeout`` / ``evicted`` / ``refused``: serving/bounded.py).

Project names are labels: they come from the store's folders, which match ``PROJECT_NAME`` (bounded and plain).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from nlu_ci.errors import StoreError
from nlu_ci.registry.store import ModelStore
from nlu_ci.serving.active_model import check_root

log = logging.getLogger(__name__)

PREFIX = "nlu_ci_model_server"
ROUTES = ("models", "health", "metrics", "other", "invalid")  # invalid: the request could not be parsed
CONTENT_TYPE = CONTENT_TYPE_LATEST
DROP_REASONS = ("timeout", "evicted", "refused")


def route_of(path: str | None) -> str:
    if path is None:
        return "invalid"
    if path.startswith("/models/"):
        return "models"
    if path in ("/health", "/healthz"):
        return "health"
    if path == "/metrics":
        return "metrics"
    return "other"


class _StoreCollector(Collector):
    """The active model of every project, read when Prometheus scrapes (never a cached value)."""

    def __init__(self, models_dir: Path, open_connections: Callable[[], int]):
        self.models_dir = Path(models_dir)
        self.open_connections = open_connections

    def collect(self):
        info = InfoMetricFamily(f"{PREFIX}_active_model", "The model the project's ACTIVE names, read at scrape "
                                "time from the model store.", labels=["project"])
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 if the model store can be read, else 0.")
        try:
            projects = check_root(self.models_dir)
            up.add_metric([], 1)
        except StoreError:
            projects = []
            up.add_metric([], 0)
        for project in projects:
            try:
                name = ModelStore(self.models_dir, project).active_name()
            except (OSError, StoreError, ValueError):
                name = None
            if name:
                info.add_metric([project], {"model": name})
        yield info
        yield up
        conns = GaugeMetricFamily(f"{PREFIX}_open_connections", "Connections open now (bounded by "
                                  "--model-server-max-connections).")
        conns.add_metric([], self.open_connections())
        yield conns


class ServerMetrics:
    def __init__(self, models_dir: Path, open_connections: Callable[[], int] = lambda: 0):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{PREFIX}_requests", "Answers of the model server by route and HTTP status code.",
                                ["route", "code"], registry=self.registry)
        self.duration = Histogram(f"{PREFIX}_request_duration_seconds", "Seconds from a parsed request to its "
                                  "answer (a zip: until sent).", ["route"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.zip_builds = Counter(f"{PREFIX}_zip_builds", "Zips of an active model built (each file checked "
                                  "against its sha256 as it is zipped), by result.", ["project", "result"],
                                  registry=self.registry)
        self.zip_seconds = Histogram(f"{PREFIX}_zip_build_duration_seconds", "Seconds one zip took to build.",
                                     registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.dropped = Counter(f"{PREFIX}_dropped_connections", "Connections closed by the server's bounds: "
                               "timeout (no complete request head in time), evicted (slot given to a newer "
                               "connection), refused (every slot busy).", ["reason"], registry=self.registry)
        for reason in DROP_REASONS:
            self.dropped.labels(reason=reason)
        self.registry.register(_StoreCollector(models_dir, open_connections))

    def answered(self, route: str, code: int, seconds: float) -> None:
        self.requests.labels(route=route, code=str(int(code))).inc()
        self.duration.labels(route=route).observe(seconds)

    def zip_built(self, project: str, result: str, seconds: float | None = None) -> None:
        self.zip_builds.labels(project=project, result=result).inc()
        if seconds is not None:
            self.zip_seconds.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
