"""``nlu-ci serve-models``: a small read-only HTTP server that serves each project's ACTIVE model in rasa_nlu 0.15's
model-server protocol.

``GET /models/<project>`` with ``If-None-Match: <etag>`` (what rasa_nlu's puller sends):

* 200: the zip of the active model, ``ETag: <fingerprint>``, ``filename: <model>.zip`` (rasa_nlu names the model
  it loads after it, so its ``/parse`` answers name the model), streamed with ``sendfile``;
* 204: the active model is the one named by ``If-None-Match`` (no ETag header: rasa_nlu 0.15 treats an ETag on
  a 204 as a new model and tries to load an empty folder);
* 404: unknown project, or no active model yet (``{"error": "<one line>"}``);
* 503: the store cannot be read, or the active model is missing or damaged (checksums) — never another model.

``GET /health``: 200 while the store can be read, else 503. ``GET /metrics``: Prometheus metrics
(serving/model_server_metrics.py). Any other method: 405; a request that cannot be parsed (a line or header too
long, too many headers, a bad request line or version, HTTP/0.9): its 4xx/5xx status and one JSON line, never
http.server's HTML. Connections are bounded (serving/bounded.py): slow clients cannot lock out ``/health``.

Checksums are checked when a model's zip is built (each file hashed as it is zipped) and again, in full, whenever
a cheap signature of the model's files (size, mtime, inode) changes; so a file damaged after the zip was built
turns the answer into 503 at the next pull.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nlu_ci.errors import StoreError
from nlu_ci.registry.store import verify_model_dir
from nlu_ci.serving.active_model import ActiveModel, NoModel, check_root, resolve
from nlu_ci.serving.bounded import (
    EVICTED,
    TIMED_OUT,
    BoundedHandlerMixin,
    BoundedHTTPServer,
    ClientGone,
    Limits,
)
from nlu_ci.serving.model_server_metrics import CONTENT_TYPE, ServerMetrics, route_of
from nlu_ci.serving.zips import Damaged, ZipCache, file_stats

log = logging.getLogger(__name__)


class ModelServer(BoundedHTTPServer):
    def __init__(self, address: tuple[str, int], models_dir: Path, zip_cache: ZipCache, limits: Limits | None = None):
        self.models_dir = Path(models_dir)
        self.zips = zip_cache
        self._verified: dict[tuple[str, str], tuple] = {}  # (project, etag) -> file signature when checked
        self._verified_lock = threading.Lock()
        super().__init__(address, Handler, limits, on_drop=lambda reason: self.metrics.dropped.labels(reason).inc())
        self.metrics = ServerMetrics(self.models_dir, self.open_connections)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, project: str) -> tuple[ActiveModel, Path]:
        """The active model of ``project`` and its verified zip; NoModel (404) or StoreError (503)."""
        model = resolve(self.models_dir, project)
        signature = file_stats(model.dir, model.files)
        key = (project, model.etag)
        with self._verified_lock:
            known = self._verified.get(key)
        damaged = f"active model {model.name} of project {project!r} is damaged"
        t0 = time.perf_counter()
        try:
            path, built = self.zips.get(project, model.dir, model.meta, model.etag)
        except Damaged as err:
            self.metrics.zip_built(project, "damaged")
            raise StoreError(f"{damaged}: {err}") from None
        except StoreError:
            self.metrics.zip_built(project, "failed")
            raise
        if built:
            self.metrics.zip_built(project, "built", time.perf_counter() - t0)
        if not built and known != signature:
            problems = verify_model_dir(model.dir)
            if problems:
                more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
                raise StoreError(f"{damaged}: {problems[0]}{more}")
        with self._verified_lock:
            self._verified[key] = signature
        return model, path


def _etags(header: str | None) -> set[str]:
    """The entity tags of an If-None-Match header, compared without quotes and weakness (rasa_nlu sends back
    exactly what it got; curl users may not quote)."""
    out = set()
    for part in (header or "").split(","):
        part = part.strip()
        if part.startswith("W/"):
            part = part[2:]
        if part:
            out.add(part.strip('"'))
    return out


class Handler(BoundedHandlerMixin, BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"
    server_version = "nlu-ci-model-server"

    def handle_one_request(self) -> None:
        self._t0, self._route = None, "invalid"  # until a request line is parsed
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._t0 = time.perf_counter()
        if not self.raw_requestline.strip(b"\r\n\t "):  # http.server closes without a word
            self.command, self.request_version, self.close_connection = None, "HTTP/1.0", True
            self.send_error(HTTPStatus.BAD_REQUEST, "empty request line")
            return False
        if len(self.raw_requestline.split()) == 2:  # HTTP/0.9 (no status line, no headers): never sent by
            self.command, self.request_version, self.close_connection = None, "HTTP/1.0", True  # rasa_nlu or curl
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.9 requests are not supported")
            return False
        if not super().parse_request():
            return False
        if self.headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # a body is never read: it must not be taken for the next request
        self._route = route_of(unquote(urlsplit(self.path).path))
        return True

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        path = unquote(urlsplit(self.path).path)
        if path in ("/health", "/healthz"):
            self._health()
        elif path == "/metrics":
            body = self.server.metrics.exposition()
            self._send_head(HTTPStatus.OK, {"Content-Type": CONTENT_TYPE, "Content-Length": str(len(body))})
            if self.command != "HEAD":
                self.wfile.write(body)
            self._log_done(HTTPStatus.OK, len(body), "")
        elif path.startswith("/models/") and path.count("/") == 2:
            self._model(path[len("/models/"):])
        else:
            self._json(HTTPStatus.NOT_FOUND,
                       {"error": f"no such path {path[:100]!r}: use /models/<project>, /health or /metrics"})

    do_HEAD = do_GET  # noqa: N815

    def _refuse(self) -> None:
        self.close_connection = True
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command[:20]} not allowed: this server is read-only"},
                   {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse  # noqa: N815

    def send_error_line(self, code: int, message: str | None) -> None:
        """What http.server answers with HTML (400, 414, 431, 501, 505): the status and one JSON line."""
        self.close_connection = True
        if self.request_version in ("HTTP/0.9", ""):  # the status line must go out whatever the client said
            self.request_version = "HTTP/1.0"
        status = HTTPStatus(code)
        reason = (message or status.phrase).splitlines()[0][:200]
        self._json(status, {"error": f"{status.phrase.lower()}: {reason}"}, {"Connection": "close"})

    def answer_dropped(self, reason: str) -> None:
        if reason == TIMED_OUT:
            status, text = HTTPStatus.REQUEST_TIMEOUT, (f"no complete request within "
                                                        f"{self.server.limits.head_timeout:g}s")
        else:
            status = HTTPStatus.SERVICE_UNAVAILABLE
            text = "too many open connections: this slow one was closed" if reason == EVICTED else reason
        self.request_version, self.command, self._route = "HTTP/1.0", None, "invalid"
        self._quiet = True  # counted, and summed up in one warning a minute (bounded.py): an attack must not flood
        self._json(status, {"error": text}, {"Connection": "close"})

    def _health(self) -> None:
        try:
            projects = check_root(self.server.models_dir)
        except StoreError as err:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unavailable", "error": str(err)})
            return
        self._json(HTTPStatus.OK, {"status": "ok", "models_dir": str(self.server.models_dir), "projects": projects})

    def _model(self, project: str) -> None:
        try:
            model, zip_path = self.server.answer(project)
        except NoModel as err:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(err)})
            return
        except StoreError as err:
            log.warning("%s", err)
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(err)})
            return
        except Exception as err:  # a bug must still answer in one line, never a traceback to the client
            log.exception("serving project %r failed", project)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(err).__name__}"})
            return
        if model.etag.strip('"') in _etags(self.headers.get("If-None-Match")):
            self._send_head(HTTPStatus.NO_CONTENT, {"Content-Length": "0"})
            self._log_done(HTTPStatus.NO_CONTENT, 0, model.name)
            return
        self._send_zip(model, zip_path)

    def _send_zip(self, model: ActiveModel, zip_path: Path) -> None:
        try:
            fh = open(zip_path, "rb")  # noqa: SIM115 (closed below; the open file survives a prune)
        except OSError as err:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"cached zip of {model.name}: {err.strerror or err}"})
            return
        with fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            self._send_head(HTTPStatus.OK, {"Content-Type": "application/zip", "Content-Length": str(size),
                                            "ETag": model.etag, "filename": f"{model.name}.zip",
                                            "Cache-Control": "no-cache"})
            if self.command != "HEAD":
                try:
                    self.connection.sendfile(fh)
                except (BrokenPipeError, ConnectionResetError, TimeoutError) as err:
                    # one line per connection: the server's handle_error says it (a second write would say it again)
                    self.close_connection = True
                    raise ClientGone(f"went away during {model.name}: {type(err).__name__}") from err
        self._log_done(HTTPStatus.OK, size, model.name)

    def _send_head(self, status: HTTPStatus, headers: dict[str, str]) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def _json(self, status: HTTPStatus, data: dict, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(data, sort_keys=True) + "\n").encode()
        self._send_head(status, {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})})
        if self.command != "HEAD":
            self.wfile.write(body)
        self._log_done(status, len(body), data.get("error", ""))

    def _log_done(self, status: int, size: int, note: str) -> None:
        seconds = max(0.0, time.perf_counter() - (getattr(self, "_t0", None) or time.perf_counter()))
        route = getattr(self, "_route", "invalid")
        self.server.metrics.answered(route, status, seconds)
        routine = status == HTTPStatus.NO_CONTENT or (status == HTTPStatus.OK and route in ("health", "metrics"))
        quiet = routine or getattr(self, "_quiet", False)
        level = logging.DEBUG if quiet else logging.INFO  # a pull every interval per replica: not news
        path = getattr(self, "path", None) if self.command else None
        log.log(level, '%s "%s %s" %d %d %.1fms %s', self.client_address[0], (self.command or "-")[:20],
                (path or "-")[:200].encode("unicode_escape").decode("ascii"), status, size, seconds * 1000,
                note)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's signature)
        log.debug("%s " + format, self.client_address[0], *args)


def make_server(host: str, port: int, models_dir: Path, zip_cache_dir: Path, limits: Limits | None = None) -> ModelServer:
    """A bound server (``serve_forever()`` to run, ``shutdown()`` from another thread to stop)."""
    return ModelServer((host, port), models_dir, ZipCache(zip_cache_dir), limits)
