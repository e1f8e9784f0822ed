"""A tiny model server on loopback for the tests: serves whatever zip bytes and ETag the test sets, in rasa_nlu's
model-server protocol (200 with ``ETag`` and ``filename``, 204 when ``If-None-Match`` names the ETag), and records
each request's ``If-None-Match``. It stands for a network path the test controls (a tampered zip on the wire)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: WireServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server
        with srv.lock:
            body, etag, filename = srv.body, srv.etag, srv.filename
            srv.requests.append(self.headers.get("If-None-Match"))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == etag:
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("filename", filename)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class WireServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.body: bytes | None = None
        self.etag, self.filename = "", ""
        self.requests: list[str | None] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/models/default"

    def set(self, body: bytes | None, etag: str = "", filename: str = "") -> None:
        with self.lock:
            self.body, self.etag, self.filename = body, etag, filename

    def start(self) -> WireServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
