"""``GET /metrics`` of a real ``nlu-ci serve-models`` process over a store trained by the real CLI: answers by route
and status code, the active model per project read from ACTIVE at scrape time (a rollback shows without any pull),
zip builds, and the metric names that the alerts and the dashboard (monitoring/) rely on."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_helpers import Store, http_get, start_model_server

from nlu_ci.registry.store import ModelStore


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Store, str, str]:
    store = Store(tmp_path_factory.mktemp("metrics_store"))
    a = store.run(0)["candidate"]["model"]
    b = store.run(2)["candidate"]["model"]
    assert store.active() == b
    return store, a, b


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    status, headers, body = http_get(url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_requests_active_model_and_zip_builds(store, tmp_path):
    st, a, b = store
    server = start_model_server(st, tmp_path)
    try:
        url = server.url
        before = scrape(url)
        assert value(before, "nlu_ci_model_server_active_model_info", project="default", model=b) == 1
        assert value(before, "nlu_ci_model_server_store_up") == 1
        assert value(before, "nlu_ci_model_server_requests_total", route="models", code="200") is None
        status, headers, _ = http_get(url + "/models/default")
        assert status == 200
        assert http_get(url + "/models/default", {"If-None-Match": headers["ETag"]})[0] == 204
        assert http_get(url + "/models/default", {"If-None-Match": headers["ETag"]})[0] == 204
        assert http_get(url + "/models/nope")[0] == 404
        assert http_get(url + "/nothing/here")[0] == 404
        samples = scrape(url)
        for (route, code), n in {("models", "200"): 1, ("models", "204"): 2, ("models", "404"): 1,
                                 ("other", "404"): 1}.items():
            assert value(samples, "nlu_ci_model_server_requests_total", route=route, code=code) == n, (route, code)
        assert value(samples, "nlu_ci_model_server_request_duration_seconds_count", route="models") == 4
        assert value(samples, "nlu_ci_model_server_zip_builds_total", project="default", result="built") == 1
        assert value(samples, "nlu_ci_model_server_zip_build_duration_seconds_count") == 1
        assert value(samples, "nlu_ci_model_server_open_connections") >= 1  # this scrape's own connection
        for reason in ("timeout", "evicted", "refused"):
            assert value(samples, "nlu_ci_model_server_dropped_connections_total", reason=reason) == 0
        # the health checks and earlier scrapes count too, and a path never becomes a label
        assert value(samples, "nlu_ci_model_server_requests_total", route="metrics", code="200") >= 1
        assert not any("nothing" in str(labels) for _, labels in samples)

        # a rollback: ACTIVE names A; the next scrape says so before any puller asked for it
        ModelStore(st.models, "default").activate(a)
        samples = scrape(url)
        assert value(samples, "nlu_ci_model_server_active_model_info", project="default", model=a) == 1
        assert value(samples, "nlu_ci_model_server_active_model_info", project="default", model=b) is None
        # a project without an active model has no info series; one more project with a model has its own
        (st.models / "fresh").mkdir()
        samples = scrape(url)
        assert [dict(labels) for name, labels in samples if name == "nlu_ci_model_server_active_model_info"] == \
            [{"project": "default", "model": a}]
    finally:
        ModelStore(st.models, "default").activate(b)
        server.stop()


def test_an_unreadable_store_is_store_up_0_and_no_active_model(store, tmp_path):
    st, _, _ = store
    server = start_model_server(st, tmp_path)
    try:
        moved = st.models.with_name("models-away")
        st.models.rename(moved)
        try:
            samples = scrape(server.url)
            assert value(samples, "nlu_ci_model_server_store_up") == 0
            assert not [k for k in samples if k[0] == "nlu_ci_model_server_active_model_info"]
        finally:
            moved.rename(st.models)
        assert value(scrape(server.url), "nlu_ci_model_server_store_up") == 1
    finally:
        server.stop()
