"""The one base for the loopback HTTP fakes (platform, Kubernetes API, Slack) and port helpers.

``LoopbackServer`` binds 127.0.0.1 port 0 in its constructor, so the kernel picks the port and the server
holds it from then on: the port it reports is its own (no pick-a-free-port, close, re-bind race).
It counts the requests in flight, so a test can wait for the server to settle (every handler done)
before asserting what the server stored, instead of sleeping.
"""
from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping (timeout tests) must not hold teardown

    def __init__(self, owner: LoopbackServer, handler: type[BaseHTTPRequestHandler]):
        super().__init__(("127.0.0.1", 0), _counted(handler, owner))

    def handle_error(self, request, client_address):  # a client that gave up (timeout tests) is no error
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _counted(handler: type[BaseHTTPRequestHandler], owner: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    """The handler, counting requests (not keep-alive connections) from parsed request line to answer."""

    class Counted(handler):
        _counted = False

        def parse_request(self):
            ok = super().parse_request()
            if ok:
                self._counted = True
                owner._requests(+1)
            return ok

        def handle_one_request(self):
            self._counted = False
            try:
                super().handle_one_request()
            finally:
                if self._counted:
                    owner._requests(-1)

    return Counted


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1, bound at construction; subclasses give ``handler_class()``."""

    scheme = "http"

    def __init__(self) -> None:
        self._in_flight = 0
        self._in_flight_cv = threading.Condition()
        self.httpd = _Server(self, self.handler_class())
        self.port: int = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The base URL (still known after ``stop()``: a test may point the job at a dead server)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def _requests(self, delta: int) -> None:
        with self._in_flight_cv:
            self._in_flight += delta
            self._in_flight_cv.notify_all()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until no request is being handled (e.g. an upload whose client gave up is stored)."""
        deadline = time.monotonic() + timeout
        with self._in_flight_cv:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{type(self).__name__}: {self._in_flight} request(s) still running "
                                         f"after {timeout:g}s")
                self._in_flight_cv.wait(left)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port bound (so nobody else gets it) but not listening: a connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@contextlib.contextmanager
def hanging_port() -> Iterator[int]:
    """A loopback port that accepts connections into the kernel backlog and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]
