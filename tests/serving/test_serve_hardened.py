"""``nlu-ci serve`` answers only its serving routes (a real ``nlu-ci serve`` pulling from a real ``nlu-ci
serve-models``), and a project whose model is gone reloads it at the next pull whatever the ETag (real rasa_nlu
``Project`` objects pulling from a loopback model server)."""
from __future__ import annotations

import http.client
import json
import zipfile
from urllib.parse import urlsplit

import pytest
from serving_helpers import Store, http_get, parse, start_model_server, start_rasa
from wire import WireServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardened")
    store = Store(tmp)
    model = store.run(0)["candidate"]["model"]
    models = start_model_server(store, tmp)
    rasa = start_rasa(store, models.url + "/models/default", tmp, pull_interval=0.5)
    try:
        yield store, models, rasa, model
    finally:
        rasa.stop()
        models.stop()


def request(url: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def one_json_error(body: bytes) -> str:
    lines = body.decode().splitlines()
    assert len(lines) == 1, body[:300]
    return json.loads(lines[0])["error"]


REFUSED = [
    ("POST", "/train?project=default", b'{"data": {}}', 404),
    ("POST", "/evaluate", b"{}", 404),
    ("DELETE", "/models?project=default", None, 404),
    ("GET", "/unload", None, 404),
    ("GET", "/", None, 404),
    ("GET", "/models/default", None, 404),
    ("DELETE", "/parse?q=hi", None, 405),
    ("PUT", "/parse", b"{}", 405),
    ("OPTIONS", "/parse", None, 405),
    ("POST", "/status", b"{}", 405),
    ("POST", "/ready", b"{}", 405),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), REFUSED)
def test_anything_but_the_serving_routes_is_refused_in_one_json_line(served, method, path, body, status):
    _, _, rasa, model = served
    got, headers, answer = request(rasa.url, method, path, body, {"Content-Type": "application/json"})
    assert got == status, answer[:300]
    assert headers["Content-Type"] == "application/json"
    assert one_json_error(answer)
    if status == 405:
        assert "GET" in headers["Allow"]
    # whatever was asked, the model is still there
    assert parse(rasa.url)[1]["model"] == model
    assert http_get(rasa.url + "/ready")[0] == 200


def test_the_serving_routes_answer_as_rasa_nlu_does(served):
    _, _, rasa, model = served
    status, body = parse(rasa.url, "hello there")
    assert status == 200 and body["model"] == model and body["text"] == "hello there" and body["intent"]["name"]
    got, _, answer = request(rasa.url, "POST", "/parse", json.dumps({"q": "hello there"}).encode())
    assert got == 200 and json.loads(answer)["model"] == model
    got, _, answer = request(rasa.url, "POST", "/parse", json.dumps({"query": "bye", "project": "default"}).encode())
    assert got == 200 and json.loads(answer)["text"] == "bye"
    assert json.loads(http_get(rasa.url + "/version")[2])["version"].startswith("0.15")
    assert "available_projects" in json.loads(http_get(rasa.url + "/status")[2])
    assert json.loads(http_get(rasa.url + "/ready")[2]) == {"ready": True, "model": model}
    got, _, answer = request(rasa.url, "GET", "/parse?text=hi")
    assert got == 404 and one_json_error(answer) == "Invalid parse parameter specified"


def _project(tmp_path):
    from rasa_nlu.project import Project

    import nlu_ci.engine  # noqa: F401  (the shims, as in nlu-ci serve)
    from nlu_ci.serving import swap

    swap.apply()
    return Project(project="default", project_dir=str(tmp_path / "rasa"), pull_models=True)


def test_a_project_whose_model_is_gone_reloads_it_at_the_next_pull_whatever_the_etag(served, tmp_path):
    from rasa_nlu.utils import EndpointConfig

    from nlu_ci.serving import swap

    _, models, _, model = served
    status, headers, body = http_get(models.url + "/models/default")
    assert status == 200
    wire = WireServer().start()
    try:
        wire.set(body, headers["ETag"], headers["filename"])
        project = _project(tmp_path)
        endpoint = EndpointConfig(wire.url)
        swap._update_from_server(endpoint, project)
        assert swap.serving_model(project) == model and project.fingerprint == headers["ETag"]
        swap._update_from_server(endpoint, project)  # loaded: the ETag is sent, 204, nothing changes
        assert wire.requests[-1] == headers["ETag"] and swap.serving_model(project) == model

        project.unload(model)  # what rasa_nlu's DELETE /models does
        assert swap.serving_model(project) is None
        swap._update_from_server(endpoint, project)
        assert wire.requests[-1] is None  # nothing loaded: no If-None-Match, so the server answers 200
        assert swap.serving_model(project) == model
        assert project.parse("hello there")["model"] == model
    finally:
        wire.stop()
        for folder in getattr(project, "_nlu_ci_dirs", []):
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


def test_a_model_that_failed_to_load_is_loaded_when_it_comes_with_the_same_etag(served, tmp_path):
    from rasa_nlu.utils import EndpointConfig

    from nlu_ci.serving import swap

    _, models, _, model = served
    _, headers, body = http_get(models.url + "/models/default")
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("metadata.json", "{not json")
    wire = WireServer().start()
    try:
        project = _project(tmp_path)
        endpoint = EndpointConfig(wire.url)
        wire.set(broken.read_bytes(), headers["ETag"], headers["filename"])
        swap._update_from_server(endpoint, project)
        assert swap.serving_model(project) is None
        wire.set(body, headers["ETag"], headers["filename"])
        swap._update_from_server(endpoint, project)
        assert wire.requests[-1] is None and swap.serving_model(project) == model
    finally:
        wire.stop()
