"""Bad requests to a real ``nlu-ci serve`` (issue 24.3, the ``serve`` side): each answers a status line and one
JSON line, adds at most one line to the server's log, never a traceback, and the server keeps serving.

The requests are written on a raw socket (no client library tidies them up). The server runs with a token
(``RASA_NLU_TOKEN``), so the 401 case is real; every other case carries the token."""
from __future__ import annotations

import json
import time

import pytest
from serving_helpers import Store, exchange, free_port, http_get, start, start_model_server

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token"


@pytest.fixture(scope="module", params=["lean", "rasa"])
def served(tmp_path_factory, request):
    """``nlu-ci serve --server lean`` (the default) and ``--server rasa``: both answer every case alike."""
    tmp = tmp_path_factory.mktemp(f"errors-{request.param}")
    store = Store(tmp)
    model = store.run(0)["candidate"]["model"]
    models = start_model_server(store, tmp)
    port = free_port()
    rasa = None
    try:
        rasa = start(["serve", "--server", request.param, "--host", "127.0.0.1", "--port", str(port), "--model-url",
                      models.url + "/models/default", "--pull-interval", "1"],
                     store.env(TMPDIR=str(tmp), RASA_NLU_TOKEN=TOKEN), tmp / "rasa.log",
                     f"http://127.0.0.1:{port}", f"/ready?token={TOKEN}")
        yield rasa, port, model
    finally:
        if rasa:
            rasa.stop()
        models.stop()


def raw(port: int, data: bytes, timeout: float = 10) -> tuple[str, bytes]:
    """Send ``data``, read until the server closes; (status line, body)."""
    head, _, body = exchange(port, data, timeout).partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode("latin-1"), body


def req(method: str, target: str, body: bytes = b"", headers: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return (f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}{length}\r\n").encode() + body


T = f"token={TOKEN}"
CASES = {
    "query not utf-8": (req("GET", f"/parse?q=%ff&{T}"), 400),
    "query key not utf-8": (req("GET", f"/parse?%fe=1&q=hi&{T}"), 400),
    "body not utf-8": (req("POST", f"/parse?{T}", b'{"q": "\xff\xfe"}'), 400),
    "body not json": (req("POST", f"/parse?{T}", b'{"q": "hi"'), 400),
    "body 100k deep": (req("POST", f"/parse?{T}", b"[" * 100_000 + b"]" * 100_000), 400),
    "body deep object": (req("POST", f"/parse?{T}", b'{"q": "hi", "x": ' + b'{"a": ' * 50 + b"1" + b"}" * 51), 400),
    "body a list": (req("POST", f"/parse?{T}", b'["hi"]'), 400),
    "q not a string": (req("POST", f"/parse?{T}", b'{"q": 5}'), 400),
    "q missing": (req("POST", f"/parse?{T}", b'{"text": "hi"}'), 404),
    "message of 1 MB in the body": (req("POST", f"/parse?{T}", json.dumps({"q": "a" * 1_000_000}).encode()), 413),
    "message too long in the query": (req("GET", f"/parse?q={'a' * 12_000}&{T}"), 413),
    "query of 1 MB": (req("GET", f"/parse?q={'a' * 1_000_000}&{T}"), 414),
    "header of 1 MB": (req("GET", f"/parse?q=hi&{T}", headers=f"X-Big: {'b' * 1_000_000}\r\n"), 431),
    "headers 20 KB in all": (req("GET", f"/parse?q=hi&{T}", headers="".join(f"X-{i}: {'c' * 900}\r\n"
                                                                            for i in range(22))), 431),
    "body of 10 MB announced": (b"POST /parse?" + T.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000"
                                b"\r\n\r\n", 413),
    "garbage request line": (b"GARBAGE\r\n\r\n", 400),
    "bad content-length": (b"POST /parse HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    "no token": (req("GET", "/parse?q=hi"), 401),
    "wrong token": (req("GET", "/parse?q=hi&token=nope"), 401),
    "unknown path": (req("GET", f"/nope?{T}"), 404),
    "path not utf-8": (req("GET", f"/pa%ffrse?{T}"), 404),
    "another project": (req("GET", f"/parse?q=hi&project=other&{T}"), 404),
    "another model": (req("GET", f"/parse?q=hi&model=model_1&{T}"), 404),
    "train": (req("POST", f"/train?{T}", b"{}"), 404),
    "delete models": (req("DELETE", f"/models?project=default&{T}"), 404),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_request_is_a_status_line_and_one_json_line(served, case):
    rasa, port, model = served
    data, status = CASES[case]
    before = len(rasa.log_text().splitlines())
    line, body = raw(port, data)
    assert line.startswith(f"HTTP/1.1 {status} "), (line, body[:300])
    lines = body.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["error"], body[:300]
    time.sleep(0.3)  # the server's log line, if any, is written after the answer
    added = rasa.log_text().splitlines()[before:]
    assert len(added) <= 1, added
    assert "Traceback" not in rasa.log_text() and "CRITICAL" not in rasa.log_text()
    assert TOKEN not in rasa.log_text()
    # and it still serves
    assert served_by(rasa.url) == model


def test_a_good_request_with_the_token_is_answered(served):
    rasa, port, model = served
    import urllib.request

    post = urllib.request.Request(f"{rasa.url}/parse?{T}", data=b'{"q": "hello there"}', method="POST")
    with urllib.request.urlopen(post, timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["model"] == model
    assert served_by(rasa.url) == model
    assert served_by(rasa.url, "nope") is None  # without the token: refused


def served_by(url: str, token: str = TOKEN) -> str | None:
    status, _, body = http_get(f"{url}/parse?q=hello+there&token={token}")
    return json.loads(body)["model"] if status == 200 else None
