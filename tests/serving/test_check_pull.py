"""`nlu-ci check --active-model-url`: the active model pulled over HTTP is verified before anything loads it, and
every way the pull can go wrong is one line and a documented exit code, with nothing trained or evaluated.

The happy path (a real `nlu-ci serve-models`) is tests/serving/test_ci_examples.py; here: a real serve-models
with no active model yet, nothing listening, a URL that is not http, and a loopback server that answers like
serve-models but with a model whose file was changed after its nlu_ci.json was written, or a zip member that
points outside the model (a hostile or broken model server).
"""
from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from serving_helpers import free_port, start

from support.data import SAMPLE, cli_env, run_cli


def check(tmp_path: Path, url: str, **env: str):
    e = cli_env(tmp_path / "models", NLU_CI_ACTIVE_MODEL_URL=url, **env)
    return run_cli(["check", "--data", str(SAMPLE), "--json"], e, timeout=120)


def one_line_error(res) -> str:
    lines = [x for x in res.stderr.splitlines() if "Traceback" in x]
    assert not lines, res.stderr[-2000:]
    return res.json["error"]


def model_zip(model_dir: Path, tamper: str | None = None, extra: str | None = None) -> bytes:
    from nlu_ci.registry.integrity import checksums

    meta = {"files": checksums(model_dir)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel in meta["files"]:
            data = (model_dir / rel).read_bytes()
            if rel == tamper:
                data = data + b"\n# changed after the checksums were recorded\n"
            zf.writestr(rel, data)
        zf.writestr("nlu_ci.json", json.dumps(meta))
        if extra:
            zf.writestr(extra, b"x")
    return buf.getvalue()


def serve_bytes(body: bytes, name: str):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("ETag", f'"{name}.abc"')
            self.send_header("filename", f"{name}.zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_no_active_model_yet_is_exit_1_naming_the_answer(tmp_path):
    (tmp_path / "served" / "default").mkdir(parents=True)
    port = free_port()
    server = start(["serve-models", "--host", "127.0.0.1", "--port", str(port), "--zip-cache", str(tmp_path / "z")],
                   cli_env(tmp_path / "served"), tmp_path / "sm.log", f"http://127.0.0.1:{port}", "/health")
    try:
        res = check(tmp_path, server.url)
    finally:
        server.stop()
    assert res.code == 1, res.output[-2000:]
    error = one_line_error(res)
    assert error.startswith(f"active model {server.url}/models/default: HTTP 404") and "no active model" in error
    assert res.json.get("candidate") is None and "train" not in (res.json.get("durations") or {})


def test_nothing_listening_is_exit_1_and_a_non_http_url_exit_2(tmp_path):
    res = check(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert res.code == 1 and "cannot download" in one_line_error(res)
    res = check(tmp_path, "s3://models/nlu-ci/default")
    assert res.code == 2 and "must start with http:// or https://" in one_line_error(res)


@pytest.mark.parametrize("how", ["tampered", "zip-slip"])
def test_a_model_that_does_not_match_its_checksums_is_never_loaded(tmp_path, trained_model, how):
    name = "model_20261202-010101"
    files = sorted(p.relative_to(trained_model).as_posix() for p in trained_model.rglob("*") if p.is_file())
    pickled = next(f for f in files if f.endswith(".pkl"))
    body = model_zip(trained_model, tamper=pickled if how == "tampered" else None,
                     extra="../outside.txt" if how == "zip-slip" else None)
    server = serve_bytes(body, name)
    try:
        res = check(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert res.code == 1, res.output[-2000:]
    error = one_line_error(res)
    if how == "tampered":
        assert f"active model {name} from " in error and "damaged" in error and f"{pickled}: checksum mismatch" in error
    else:
        assert "points outside the model" in error
    assert not list(tmp_path.rglob("outside.txt"))
    assert res.json.get("candidate") is None  # nothing was trained
