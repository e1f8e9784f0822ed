"""``nlu-ci serve-models`` speaks rasa_nlu 0.15's model-server protocol over the store's ACTIVE models, and answers
bad input (unknown project, missing or damaged model, unreadable store) with 404/503 and one line — never another
model. The server runs in-process on loopback over a store trained by the real CLI (two models, A then B)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from serving_helpers import Store, http_get, zip_is_complete_model

from nlu_ci.registry.store import ModelStore
from nlu_ci.serving import model_server
from nlu_ci.serving.swap import model_name_from


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str, str]:
    """A store where A was promoted, then B; returns (models dir, A, B)."""
    store = Store(tmp_path_factory.mktemp("serving_store"))
    a = store.run(0)["candidate"]["model"]
    b = store.run(2)["candidate"]["model"]
    assert store.active() == b
    return store.models, a, b


@pytest.fixture
def models(trained, tmp_path) -> Path:
    dest = tmp_path / "models"
    shutil.copytree(trained[0], dest)
    return dest


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(models_dir: Path) -> str:
        server = model_server.make_server("127.0.0.1", 0, models_dir, tmp_path / "zips")
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server.url

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def activate(models: Path, name: str) -> None:
    ModelStore(models, "default").activate(name)


def error_line(body: bytes) -> str:
    text = body.decode()
    assert text.count("\n") == 1 and "Traceback" not in text
    return json.loads(text)["error"]


def test_the_active_model_with_etag_and_filename_then_204_until_it_changes(models, trained, serve):
    _, a, b = trained
    url = serve(models) + "/models/default"
    status, headers, body = http_get(url)
    assert status == 200 and headers["filename"] == f"{b}.zip" and headers["Content-Type"] == "application/zip"
    assert int(headers["Content-Length"]) == len(body)
    assert zip_is_complete_model(body) == (b, [])
    etag_b = headers["ETag"]
    assert etag_b.startswith(f'"{b}.')
    status, headers, body = http_get(url, {"If-None-Match": etag_b})
    assert (status, body) == (204, b"") and "ETag" not in headers and "filename" not in headers  # rasa_nlu 0.15 loads an ETag'd 204
    # rollback: ACTIVE names the older model again -> another ETag, so the puller takes it at its next pull
    activate(models, a)
    status, headers, body = http_get(url, {"If-None-Match": etag_b})
    assert status == 200 and headers["filename"] == f"{a}.zip" and headers["ETag"] != etag_b
    assert zip_is_complete_model(body) == (a, [])
    assert http_get(url, {"If-None-Match": headers["ETag"]})[0] == 204
    # HEAD: the same headers, no body
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as resp:
        assert resp.status == 200 and resp.headers["filename"] == f"{a}.zip" and resp.read() == b""


def test_a_newer_model_that_is_not_active_is_never_served(models, trained, serve):
    _, a, b = trained
    activate(models, a)  # B (newer, as a rejected candidate would be) stays in the store
    status, headers, body = http_get(serve(models) + "/models/default")
    assert status == 200 and headers["filename"] == f"{a}.zip" and zip_is_complete_model(body)[0] == a


@pytest.mark.parametrize("path, reason", [
    ("/models/nope", "no project 'nope' in the model store"),
    ("/models/.incoming", "is not a project name"),
    ("/models/a%2F..", "no such path"),
    ("/nothing", "no such path"),
])
def test_unknown_projects_and_paths_are_404_with_one_line(models, serve, path, reason):
    status, _, body = http_get(serve(models) + path)
    assert status == 404 and reason in error_line(body)


def test_a_project_without_an_active_model_is_404(models, serve):
    (models / "fresh").mkdir()
    status, _, body = http_get(serve(models) + "/models/fresh")
    assert status == 404 and "has no active model yet" in error_line(body)


def damage_file(models: Path, name: str) -> None:
    p = models / "default" / name / "metadata.json"
    p.write_text(p.read_text().replace("}", " }", 1))


DAMAGES = {
    "changed file": (damage_file, "checksum mismatch"),
    "missing file": (lambda m, n: (m / "default" / n / "metadata.json").unlink(), "file missing"),
    "missing folder": (lambda m, n: shutil.rmtree(m / "default" / n), "model folder missing"),
    "bad nlu_ci.json": (lambda m, n: (m / "default" / n / "nlu_ci.json").write_text("{"), "unreadable model metadata"),
    "ACTIVE unreadable": (lambda m, n: ((m / "default" / "ACTIVE").unlink(), (m / "default" / "ACTIVE").mkdir()),
                          "cannot read"),
    "ACTIVE names garbage": (lambda m, n: (m / "default" / "ACTIVE").write_text("../../etc\n"), "invalid model name"),
}


@pytest.mark.parametrize("zip_built_first", [False, True], ids=["fresh", "zip-cached"])
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_active_model_is_503_never_another_model(models, trained, serve, damage, zip_built_first):
    _, a, b = trained
    url = serve(models) + "/models/default"
    if zip_built_first:
        assert http_get(url)[0] == 200
    how, reason = DAMAGES[damage]
    how(models, b)
    for headers in ({}, {"If-None-Match": f'"{a}"'}):
        status, got_headers, body = http_get(url, headers)
        assert status == 503 and reason in error_line(body) and "filename" not in got_headers


def test_an_unreadable_store_is_503_on_models_and_health(tmp_path, serve):
    missing = tmp_path / "not-mounted"
    url = serve(missing)
    for path in ("/models/default", "/health"):
        status, _, body = http_get(url + path)
        assert status == 503 and f"model store {missing} is not readable" in error_line(body)


# the model server in a process of its own, as another user (root reads a chmod 000 folder anyway)
SERVE_AS_NOBODY = """
import sys
from pathlib import Path
from nlu_ci.serving import model_server
server = model_server.make_server("127.0.0.1", 0, Path(sys.argv[1]), Path(sys.argv[2]))
print(server.url, flush=True)
server.serve_forever(poll_interval=0.05)
"""


def test_a_store_without_permission_is_503(models, serve):
    """As root (how CI runs) the server runs as nobody through setpriv; as another user, in this process."""
    if os.geteuid() != 0:
        models.chmod(0)
        try:
            status, _, body = http_get(serve(models) + "/models/default")
            assert status == 503 and "not readable" in error_line(body)
        finally:
            models.chmod(0o755)
        return
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run this test as root")
    scratch = Path(tempfile.mkdtemp(prefix="nlu-ci-unreadable-"))  # outside pytest's 0700 tmp folder
    try:
        scratch.chmod(0o755)
        store = scratch / "models"
        shutil.copytree(models, store)
        for path in [store, *store.rglob("*")]:          # nobody's store, as the job's user owns the PVC
            os.chown(path, 65534, 65534, follow_symlinks=False)
        store.chmod(0)
        zips = scratch / "zips"
        zips.mkdir(mode=0o700)
        os.chown(zips, 65534, 65534)  # the server's own cache (one anybody may write is refused: issue 24.2)
        proc = subprocess.Popen(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                                 sys.executable, "-c", SERVE_AS_NOBODY, str(store), str(zips)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
            status, _, body = http_get(url + "/models/default")
            assert status == 503 and f"model store {store} is not readable" in error_line(body)
            store.chmod(0o750)                          # the same server, once it may read: the active model
            status, headers, body = http_get(url + "/models/default")
            assert status == 200 and zip_is_complete_model(body)[1] == []
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_concurrent_first_requests_get_one_complete_zip_built_once(models, trained, serve, tmp_path):
    _, a, b = trained
    url = serve(models) + "/models/default"
    answers: list = []
    threads = [threading.Thread(target=lambda: answers.append(http_get(url))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 8 and {s for s, _, _ in answers} == {200}
    assert len({body for _, _, body in answers}) == 1 and zip_is_complete_model(answers[0][2]) == (b, [])
    assert [p.name for p in (tmp_path / "zips" / "default").iterdir()] == [answers[0][1]["ETag"].strip('"') + ".zip"]


def test_leftover_temporary_zips_are_removed_and_never_served(models, trained, tmp_path, serve):
    half = tmp_path / "zips" / "default" / ".half.zip.123.4.tmp"
    half.parent.mkdir(parents=True)
    half.write_bytes(b"PK\x03\x04 half")
    status, _, body = http_get(serve(models) + "/models/default")
    assert status == 200 and zip_is_complete_model(body) == (trained[2], []) and not half.exists()


def test_writes_are_refused(models, serve):
    import urllib.request

    req = urllib.request.Request(serve(models) + "/models/default", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("POST accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 405 and "read-only" in error_line(err.read())


def test_health_lists_projects(models, serve):
    status, _, body = http_get(serve(models) + "/health")
    assert status == 200 and json.loads(body)["projects"] == ["default"]


@pytest.mark.parametrize("header, name", [("model_20261129-120000.zip", "model_20261129-120000"),
                                          ("pizza.zip", "pizza"), ("../x/model_a-1.zip", "model_a-1"), (None, None)])
def test_the_model_name_from_the_filename_header(header, name):
    assert model_name_from(header) == name  # rasa_nlu's own str.strip(".zip") turns 'pizza.zip' into ''
