"""What ``nlu-ci serve`` lets through to rasa_nlu's ``RasaNLU`` app, and how it answers everything else.

rasa_nlu 0.15's app also serves ``/train``, ``/evaluate`` and ``DELETE /models`` to anyone who can connect (one
``DELETE /models`` leaves the server with no model), and answers a bad request with Klein's HTML pages or a
twisted traceback. ``Guard`` is the root resource in front of it:

* only ``/parse`` (GET, POST), ``/status``, ``/version``, ``/ready`` (GET) and the routes given in ``extra``
  (``/metrics``) pass; any other path is 404, another method 405 (with ``Allow``);
* the query string must be UTF-8, a POST body a UTF-8 JSON object (at most ``MAX_DEPTH`` deep) whose ``q`` (or
  ``query``) is a string, the text at most ``max_chars`` characters (413), ``project`` the served one
  (``default``), ``model`` the served model or absent; otherwise 400/404/413 before rasa_nlu sees it;
* with a token (``RASA_NLU_TOKEN``) a request without it is 401 (except ``open_routes``: ``/ready``, ``/metrics``);
* ``JsonRequest.processingFailed`` turns an exception in a handler into a 500 JSON line and one log line;
* ``GuardedChannel`` answers a malformed request line, an oversized line or header block (431/414), too many
  headers or an oversized body (413) with a status line and one JSON line, then closes (twisted writes a bare
  ``400`` or drops the connection).

Every refused request is one JSON line ``{"error": "..."}`` and one log line (INFO), never a traceback.
"""
from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import time
from collections.abc import Callable

from twisted.web import http, server
from twisted.web.resource import Resource

from nlu_ci import safeio

log = logging.getLogger(__name__)

RASA_ROUTES = {b"/parse": (b"GET", b"POST"), b"/status": (b"GET",), b"/version": (b"GET",), b"/ready": (b"GET",)}
MAX_DEPTH = 32  # a /parse body is {"q": "...", "project": ..., "model": ...}: deeper is not a parse request
MAX_BODY = 4 << 20  # bytes of a request body (Content-Length); more is 413 before it is read
PROJECT = "default"  # rasa_nlu's server pulls for its default project only


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def error_body(message: str) -> bytes:
    return (json.dumps({"error": message}, ensure_ascii=True) + "\n").encode()




def _args(request) -> dict[str, list[str]]:
    try:
        return {k.decode("utf-8"): [v.decode("utf-8") for v in vals] for k, vals in request.args.items()}
    except UnicodeDecodeError:
        raise Refused(400, "the query string is not valid UTF-8") from None


def _body(request) -> dict:
    raw = request.content.read() if request.content is not None else b""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Refused(400, "the request body is not valid UTF-8") from None
    except RecursionError:
        raise Refused(400, f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:
        raise Refused(400, f"the request body is not JSON: {str(err)[:120]}") from None
    if not isinstance(data, dict):
        raise Refused(400, 'the request body must be a JSON object such as {"q": "hello"}')
    if not safeio.nesting_ok(data, MAX_DEPTH):
        raise Refused(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
    request.content = io.BytesIO(raw)  # rasa_nlu reads it again
    return data


class Guard(Resource):
    isLeaf = True

    def __init__(self, rasa_resource, *, token: str | None = None, max_chars: int = 10_000,
                 serving_model: Callable[[], str | None] = lambda: None,
                 extra: dict[bytes, Callable] | None = None, on_parse: Callable | None = None,
                 open_routes: tuple[bytes, ...] = ()):
        super().__init__()
        self.rasa, self.token, self.max_chars = rasa_resource, token, max_chars
        self.open_routes = open_routes  # answered without the token (probes, scrapes)
        self.serving_model, self.extra = serving_model, extra or {}
        self.on_parse = on_parse  # called as on_parse(status, seconds) when a /parse request finishes

    def render(self, request):
        t0 = time.perf_counter()
        path = request.path
        if path == b"/parse" and self.on_parse is not None:
            request.notifyFinish().addBoth(lambda _: self.on_parse(request.code, time.perf_counter() - t0))
        try:
            self._check(request, path)
        except Refused as err:
            return self.refuse(request, err.status, str(err), err.headers)
        if path in self.extra:
            return self.extra[path](request)
        return self.rasa.render(request)

    def _check(self, request, path: bytes) -> None:
        methods = (b"GET",) if path in self.extra else RASA_ROUTES.get(path)
        if methods is None:
            allowed = b", ".join([*RASA_ROUTES, *self.extra]).decode()
            raise Refused(404, f"no such path {path[:100].decode('utf-8', 'replace')!r}: this server answers {allowed}")
        if request.method not in methods:
            allow = ", ".join(m.decode() for m in methods)
            raise Refused(405, f"{request.method[:20].decode('latin-1')} not allowed on {path.decode()}: use {allow}",
                          {"Allow": allow})
        args = _args(request)
        if self.token is not None and path not in self.open_routes:
            given = (args.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise Refused(401, "unauthorized: this server needs ?token=")
        if path == b"/parse":
            params = {k: v[0] for k, v in args.items() if v}
            if request.method == b"POST":
                params = _body(request)
            self._check_parse(params)

    def _check_parse(self, params: dict) -> None:
        text = params.get("q", params.get("query"))
        if text is None:  # rasa_nlu's own answer, in one line
            raise Refused(404, "Invalid parse parameter specified")
        if not isinstance(text, str):
            raise Refused(400, '"q" must be a string')
        if len(text) > self.max_chars:
            raise Refused(413, f"the message has {len(text)} characters, more than {self.max_chars} "
                               "(--max-message-chars)")
        project = params.get("project", PROJECT)
        if project != PROJECT:
            raise Refused(404, f"no project {str(project)[:80]!r}: this server serves {PROJECT!r}")
        model = params.get("model")
        if model is not None and model != self.serving_model():
            raise Refused(404, f"model {str(model)[:80]!r} is not the served model ({self.serving_model()})")

    @staticmethod
    def refuse(request, status: int, message: str, headers: dict[str, str] | None = None) -> bytes:
        log.info('%s "%s %s" %d %s', _peer(request), request.method[:20].decode("latin-1"),
                 request.path[:200].decode("utf-8", "replace"), status, message)
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        for k, v in (headers or {}).items():
            request.setHeader(k.encode(), v.encode())
        return error_body(message)


def _peer(request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", "?")


class JsonRequest(server.Request):
    """A handler that raised: a 500 JSON line and one log line naming the exception (no traceback)."""

    def processingFailed(self, reason):  # noqa: N802 (twisted's name)
        err = reason.value
        log.error('%s "%s %s" 500 internal error: %s: %s', _peer(self), self.method[:20].decode("latin-1"),
                  self.path[:200].decode("utf-8", "replace"), type(err).__name__, " ".join(str(err).split())[:200])
        if self.finished or self._disconnected:
            return reason
        body = error_body(f"internal error: {type(err).__name__}")
        self.setResponseCode(http.INTERNAL_SERVER_ERROR)
        self.setHeader(b"Content-Type", b"application/json")
        self.setHeader(b"Content-Length", b"%d" % len(body))
        self.write(body)
        self.finish()
        return reason


class GuardedChannel(http.HTTPChannel):
    """twisted's HTTP channel, answering malformed or oversized requests with a status line and one JSON line."""

    def _answer_and_close(self, status: int, message: str) -> None:
        peer = getattr(self.transport.getPeer(), "host", "?") if self.transport else "?"
        log.info("%s bad request: %d %s", peer, status, message)
        body = error_body(message)
        reason = http.RESPONSES.get(status, b"Error")
        self.dataReceived = self.lineReceived = self.rawDataReceived = lambda *a: None  # the rest is read, ignored
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        # half-close: the answer is followed by a FIN, and what the client still sends is read and dropped, so
        # the kernel does not reset the connection (which can discard the answer); the client has 2 s to close
        from twisted.internet import reactor

        transport = self.transport
        try:
            transport.loseWriteConnection()
        except AttributeError:  # a transport that cannot half-close
            transport.loseConnection()
            return
        reactor.callLater(2.0, _abort, transport)

    def _respondToBadRequestAndDisconnect(self):  # noqa: N802 (twisted's name)
        if self._receivedHeaderSize > self.totalHeadersSize:
            self._answer_and_close(431, f"request headers larger than {self.totalHeadersSize} bytes")
        elif self._receivedHeaderCount > self.maxHeaders:
            self._answer_and_close(431, f"more than {self.maxHeaders} request headers")
        else:
            self._answer_and_close(400, "malformed request line or header")

    def lineLengthExceeded(self, line):  # noqa: N802 (twisted's name)
        if getattr(self, "_HTTPChannel__first_line", 0):
            self._answer_and_close(414, f"request line longer than {self.MAX_LENGTH} bytes")
        else:
            self._answer_and_close(431, f"a request header longer than {self.MAX_LENGTH} bytes")

    def allHeadersReceived(self):  # noqa: N802 (twisted's name)
        if self.length is not None and self.length > MAX_BODY:
            self._answer_and_close(413, f"request body of {self.length} bytes, more than {MAX_BODY}")
            return
        super().allHeadersReceived()


def _abort(transport) -> None:
    with contextlib.suppress(Exception):
        transport.abortConnection()


def site(root: Resource) -> server.Site:
    """A twisted ``Site`` over ``root`` with the JSON error answers above."""
    s = server.Site(root, requestFactory=JsonRequest)
    s.displayTracebacks = False
    s.protocol = lambda: http._GenericHTTPChannelProtocol(GuardedChannel())
    return s
