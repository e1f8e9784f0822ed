"""What ``nlu-ci serve --server rasa`` lets through to rasa_nlu's ``RasaNLU`` app, and how it answers everything else.

rasa_nlu 0.15's app also serves ``/train``, ``/evaluate`` and ``DELETE /models`` to anyone who can connect (one
``DELETE /models`` leaves the server with no model), and answers a bad request with Klein's HTML pages or a
twisted traceback. ``Guard`` is the root resource in front of it:

* what passes is decided by ``parse_rules.Rules`` (the lean server applies the same rules): only the serving
  routes, a UTF-8 query, a JSON object body, a bounded message, the served project and model, the token;
* ``JsonRequest.processingFailed`` turns an exception in a handler into a 500 JSON line and one log line;
* ``GuardedChannel`` answers a malformed request line, an oversized line or header block (431/414), too many
  headers or an oversized body (413) with a status line and one JSON line, then closes (twisted writes a bare
  ``400`` or drops the connection).

Every refused request is one JSON line ``{"error": "..."}`` and one log line (INFO), never a traceback.
"""
from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable

from twisted.web import http, server
from twisted.web.resource import Resource

from nlu_ci.serving.parse_rules import MAX_BODY, PROJECT, RASA_ROUTES, Refused, Rules, error_body

__all__ = ["MAX_BODY", "PROJECT", "RASA_ROUTES", "Guard", "GuardedChannel", "JsonRequest", "Refused", "error_body",
           "site"]
log = logging.getLogger(__name__)


def _read_body(request) -> bytes:
    raw = request.content.read() if request.content is not None else b""
    request.content = io.BytesIO(raw)  # rasa_nlu reads it again
    return raw


class Guard(Resource):
    isLeaf = True

    def __init__(self, rasa_resource, *, token: str | None = None, max_chars: int = 10_000,
                 serving_model: Callable[[], str | None] = lambda: None,
                 extra: dict[bytes, Callable] | None = None, on_parse: Callable | None = None,
                 open_routes: tuple[bytes, ...] = ()):
        super().__init__()
        self.rasa, self.extra = rasa_resource, extra or {}
        self.rules = Rules(token=token, max_chars=max_chars, serving_model=serving_model, extra=tuple(self.extra),
                           open_routes=open_routes)
        self.on_parse = on_parse  # called as on_parse(status, seconds) when a /parse request finishes

    def render(self, request):
        t0 = time.perf_counter()
        path = request.path
        if path == b"/parse" and self.on_parse is not None:
            request.notifyFinish().addBoth(lambda _: self.on_parse(request.code, time.perf_counter() - t0))
        try:
            self.rules.check(request.method, path, request.args, lambda: _read_body(request))
        except Refused as err:
            return self.refuse(request, err.status, str(err), err.headers)
        if path in self.extra:
            return self.extra[path](request)
        return self.rasa.render(request)

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
