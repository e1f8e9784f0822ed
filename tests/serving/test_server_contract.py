"""The contract: ``nlu-ci serve --server lean`` answers as ``nlu-ci serve --server rasa`` (rasa_nlu 0.15's own
Twisted server behind nlu-ci's guard) does. Both real servers pull the same model (intents and entities, the
default pipeline) from one real ``nlu-ci serve-models``; every request below goes to both, good and bad ones, and
the status code, the body and the headers a client acts on (Content-Type, Allow, CORS) must be equal.

What is normalised, and why (nothing else is):
* the reason phrase of the status line: Twisted and aiohttp word a few of them differently (413: "Request Entity
  Too Large" / "Payload Too Large"); clients act on the code;
* ``/metrics``: the counts depend on how many requests each server has seen and on its worker count; only the
  status and the content type are compared (the metrics themselves: test_serve_metrics.py);
* headers that name the server or the moment (``Server``, ``Date``), and the framing (``Content-Length`` vs
  chunked, ``Connection``): they are how the bytes travel, not what they say.
There are no timestamps in these answers, so the bodies are compared byte for byte.
"""
from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest
from serving_helpers import ROOT, Store, exchange, free_port, start, start_model_server

pytestmark = pytest.mark.slow

COMPARED_HEADERS = ("content-type", "allow", "access-control-allow-origin", "access-control-allow-headers",
                    "access-control-allow-methods")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    store = Store(tmp, config=(ROOT / "nlu_config.yml").read_text())  # with entities: their answers are compared
    model = store.run(0)["candidate"]["model"]
    models = start_model_server(store, tmp)
    running = {}
    try:
        for kind, extra in (("rasa", []), ("lean", ["--workers", "2"])):
            port = free_port()
            running[kind] = start(["serve", "--server", kind, "--host", "127.0.0.1", "--port", str(port),
                                   "--model-url", models.url + "/models/default", "--pull-interval", "5", *extra],
                                  store.env(TMPDIR=str(tmp)), tmp / f"{kind}.log", f"http://127.0.0.1:{port}",
                                  "/ready")
        yield running, model
    finally:
        for server in running.values():
            server.stop()
        models.stop()


def ask(url: str, method: str, target: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    netloc = urllib.parse.urlsplit(url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=20)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        got = {k.lower(): v for k, v in resp.getheaders() if k.lower() in COMPARED_HEADERS}
        return resp.status, got, resp.read()
    finally:
        conn.close()


def ask_raw(url: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """For heads no client library sends: write them on a socket, read until the server closes."""
    head, _, body = exchange(int(urllib.parse.urlsplit(url).port), data, 20).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), {k: v for k, v in headers.items() if k in COMPARED_HEADERS}, body


def q(text: str) -> str:
    return urllib.parse.quote(text)


UNICODE = "Grüße aus Köln, 東京 🍕 — ça va?"
JSON_HEADERS = {"Content-Type": "application/json"}
CASES = {
    "get parse": ("GET", "/parse?q=i+want+a+large+pizza", None, {}),
    "get parse, entities": ("GET", f"/parse?q={q('book a table for two in berlin tomorrow')}", None, {}),
    "no q": ("GET", "/parse", None, {}),
    "text instead of q": ("GET", "/parse?text=hi", None, {}),
    "empty q": ("GET", "/parse?q=", None, {}),
    "q twice": ("GET", "/parse?q=hello&q=bye", None, {}),
    "q and query": ("GET", "/parse?query=bye&q=hello", None, {}),
    "semicolon separates as twisted does": ("GET", "/parse?q=hello;project=default", None, {}),
    "huge q": ("GET", f"/parse?q={'a' * 10_001}", None, {}),
    "q at the limit": ("GET", f"/parse?q={'ab+' * 3333}a", None, {}),
    "unicode q": ("GET", f"/parse?q={q(UNICODE)}", None, {}),
    "unicode q in a post": ("POST", "/parse", json.dumps({"q": UNICODE}, ensure_ascii=False).encode(), JSON_HEADERS),
    "query not utf-8": ("GET", "/parse?q=%ff", None, {}),
    "post json": ("POST", "/parse", b'{"q": "hello there"}', JSON_HEADERS),
    "post query and project": ("POST", "/parse", b'{"query": "bye", "project": "default"}', JSON_HEADERS),
    "post json without content type": ("POST", "/parse", b'{"q": "thanks a lot"}', {}),
    "post form": ("POST", "/parse", b"q=hello", {"Content-Type": "application/x-www-form-urlencoded"}),
    "post bad json": ("POST", "/parse", b'{"q": "hi"', JSON_HEADERS),
    "post empty body": ("POST", "/parse", b"", JSON_HEADERS),
    "post a list": ("POST", "/parse", b'["hi"]', JSON_HEADERS),
    "post q not a string": ("POST", "/parse", b'{"q": 5}', JSON_HEADERS),
    "post huge q": ("POST", "/parse", json.dumps({"q": "a" * 20_000}).encode(), JSON_HEADERS),
    "post body not utf-8": ("POST", "/parse", b'{"q": "\xff"}', JSON_HEADERS),
    "unknown project": ("GET", "/parse?q=hi&project=other", None, {}),
    "unknown model": ("GET", "/parse?q=hi&model=model_19990101-000000", None, {}),
    "unknown project in a post": ("POST", "/parse", b'{"q": "hi", "project": "nope"}', JSON_HEADERS),
    "cors": ("GET", "/parse?q=hello", None, {"Origin": "https://example.com"}),
    "cors on status": ("GET", "/status", None, {"Origin": "https://example.com"}),
    "status": ("GET", "/status", None, {}),
    "version": ("GET", "/version", None, {}),
    "ready": ("GET", "/ready", None, {}),
    "metrics": ("GET", "/metrics", None, {}),
    "put parse": ("PUT", "/parse", b"{}", JSON_HEADERS),
    "delete parse": ("DELETE", "/parse?q=hi", None, {}),
    "options parse": ("OPTIONS", "/parse", None, {}),
    "post status": ("POST", "/status", b"{}", JSON_HEADERS),
    "post version": ("POST", "/version", b"{}", JSON_HEADERS),
    "unknown route": ("GET", "/nope", None, {}),
    "root": ("GET", "/", None, {}),
    "path not utf-8": ("GET", "/pa%ffrse", None, {}),
    "train": ("POST", "/train?project=default", b'{"data": {}}', JSON_HEADERS),
    "evaluate": ("POST", "/evaluate", b"{}", JSON_HEADERS),
    "delete models": ("DELETE", "/models?project=default", None, {}),
}
RAW = {
    "query of 1 MB": b"GET /parse?q=" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header of 1 MB": b"GET /parse?q=hi HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 1_000_000 + b"\r\n\r\n",
    "headers 20 KB in all": b"GET /parse?q=hi HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: %s\r\n" % (i, b"c" * 900) for i in range(22)) + b"\r\n",
    "body of 10 MB announced": b"POST /parse HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n",
    "garbage request line": b"GARBAGE\r\n\r\n",
    "bad content-length": b"POST /parse HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
}
NOT_BYTES = {"metrics"}  # counts differ by traffic and workers (module docstring)


def both(servers, fn, *args):
    running, _ = servers
    return fn(running["rasa"].url, *args), fn(running["lean"].url, *args)


@pytest.mark.parametrize("case", list(CASES))
def test_the_lean_server_answers_as_rasa_nlus_server(servers, case):
    method, target, body, headers = CASES[case]
    (r_status, r_headers, r_body), (l_status, l_headers, l_body) = both(servers, ask, method, target, body, headers)
    assert l_status == r_status, (case, r_body[:300], l_body[:300])
    assert l_headers == r_headers, case
    if case not in NOT_BYTES:
        assert l_body == r_body, (case, r_body[:500], l_body[:500])


@pytest.mark.parametrize("case", list(RAW))
def test_a_malformed_head_is_answered_as_rasa_nlus_guarded_server_answers_it(servers, case):
    (r_status, r_headers, r_body), (l_status, l_headers, l_body) = both(servers, ask_raw, RAW[case])
    assert (l_status, l_headers, l_body) == (r_status, r_headers, r_body), case


def test_the_answers_are_the_served_models(servers):
    """Not equal by both being wrong: the parse answers name the served model and its intents and entities."""
    running, model = servers
    _, _, body = ask(running["lean"].url, "GET", f"/parse?q={q('book a table for two in berlin tomorrow')}")
    answer = json.loads(body)
    assert answer["model"] == model and answer["project"] == "default" and answer["intent"]["name"]
    assert set(answer) >= {"text", "intent", "intent_ranking", "entities"}
    status = json.loads(ask(running["lean"].url, "GET", "/status")[2])
    assert status["available_projects"]["default"]["loaded_models"] == [model]
