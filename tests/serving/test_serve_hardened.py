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


# -- the query log (--query-log): a second real nlu-ci serve against the same model server

PII = ["mail me at jane.doe@example.com please", "my card is 4111 1111 1111 1111", "call +49 170-1234567 now"]


def test_the_query_log_is_rasa_nlus_format_bounded_masked_and_0640(served, tmp_path):
    import os
    import re
    import time

    from serving_helpers import TEXTS, free_port, start

    store, models, _, model = served
    folder = tmp_path / "queries"
    folder.mkdir(mode=0o750)
    old = folder / "rasa_nlu_log-20200101-000000-1.log"  # an earlier run's file, past the age limit
    old.write_text('{"user_input": {"text": "old"}}\n')
    os.utime(old, (time.time() - 8 * 86400,) * 2)
    other = folder / "notes.txt"  # not a query-log file: left alone
    other.write_text("x")
    port = free_port()
    max_bytes = 20_000
    rasa = start(["serve", "--host", "127.0.0.1", "--port", str(port), "--model-url", models.url + "/models/default",
                  "--query-log", str(folder), "--query-log-max-mb", str(max_bytes / 1024 / 1024)],
                 store.env(TMPDIR=str(tmp_path)), tmp_path / "rasa_qlog.log", f"http://127.0.0.1:{port}", "/ready")
    try:
        sent = [TEXTS[i % len(TEXTS)] for i in range(150)] + PII
        answers = [parse(rasa.url, text)[1] for text in sent]
        assert all(a.get("model") == model for a in answers)
    finally:
        rasa.stop()
    files = sorted(folder.glob("rasa_nlu_log-*.log"))
    assert not old.exists() and other.exists()
    assert all(re.fullmatch(r"rasa_nlu_log-\d{8}-\d{6}-\d+(-\d+)?\.log", f.name) for f in files), files
    assert len(files) >= 2  # rotated
    assert {oct(f.stat().st_mode & 0o777) for f in files} == {"0o640"}
    total = sum(f.stat().st_size for f in files)
    assert total <= max_bytes * 1.25 + 2_000, total  # the bound, plus the file being written
    records = sorted((json.loads(line) for f in files for line in f.read_text().splitlines()),
                     key=lambda r: r["log_time"])
    assert 10 < len(records) < len(sent)  # the oldest were removed
    text = "".join(f.read_text() for f in files)
    assert "jane.doe@example.com" not in text and "4111" not in text and "1234567" not in text
    assert [r["user_input"]["text"] for r in records[-3:]] == ["mail me at <email> please", "my card is <number>",
                                                              "call +<number> now"]
    # rasa_nlu's own query logger, given the same answer, writes the same record (but for the time)
    from rasa_nlu.data_router import DataRouter

    own = DataRouter._create_query_logger(str(tmp_path / "rasa_own"))
    unmasked = answers[-4]
    own.info("", user_input=unmasked, project="default", model=unmasked.get("model"))
    theirs = json.loads(next((tmp_path / "rasa_own").glob("rasa_nlu_log-*.log")).read_text().splitlines()[0])
    ours = records[-4]
    assert ours.pop("log_time") > 0 and theirs.pop("log_time") > 0
    assert ours == theirs
    assert set(ours["user_input"]) == {"text", "intent", "intent_ranking", "entities", "project", "model"}


def test_the_query_log_is_off_by_default(served):
    store, *_ = served
    assert not list(store.root.rglob("rasa_nlu_log-*"))


@pytest.mark.parametrize(("text", "masked"), [
    ("a.b-c+d@mail.example.org wrote", "<email> wrote"),
    ("iban DE44 5001 0517 5407 3249 31", "iban DE<number>"),
    ("order 12345 is late", "order 12345 is late"),  # 5 digits: kept
    ("tel 030.123.456", "tel <number>"),
])
def test_masking(text, masked):
    from nlu_ci.serving.query_log import mask_text

    assert mask_text(text) == masked
