"""``nlu-ci serve-models``: a small read-only HTTP server that serves each project's ACTIVE model in rasa_nlu 0.15's
model-server protocol.

``GET /models/<project>`` with ``If-None-Match: <etag>`` (what rasa_nlu's puller sends):

* 200: the zip of the active model, ``ETag: <fingerprint>``, ``filename: <model>.zip`` (rasa_nlu names the model
  it loads after it, so its ``/parse`` answers name the model), streamed with ``sendfile``;
* 204: the active model is the one named by ``If-None-Match`` (no ETag header: rasa_nlu 0.15 treats an ETag on
  a 204 as a new model and tries to load an empty folder);
* 404: unknown project, or no active model yet (``{"error": "<one line>"}``);
* 503: the store cannot be read, or the active model is missing or damaged (checksums) — never another model.

``GET /health``: 200 while the store can be read, else 503. Anything but GET/HEAD: 405.

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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from nlu_ci.errors import StoreError
from nlu_ci.registry.store import verify_model_dir
from nlu_ci.serving.active_model import ActiveModel, NoModel, check_root, resolve
from nlu_ci.serving.zips import Damaged, ZipCache, file_stats

log = logging.getLogger(__name__)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], models_dir: Path, zip_cache: ZipCache):
        self.models_dir = Path(models_dir)
        self.zips = zip_cache
        self._verified: dict[tuple[str, str], tuple] = {}  # (project, etag) -> file signature when checked
        self._verified_lock = threading.Lock()
        super().__init__(address, Handler)

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
        try:
            path, built = self.zips.get(project, model.dir, model.meta, model.etag)
        except Damaged as err:
            raise StoreError(f"{damaged}: {err}") from None
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


class Handler(BaseHTTPRequestHandler):
    server: ModelServer
    protocol_version = "HTTP/1.1"
    server_version = "nlu-ci-model-server"
    timeout = 60  # a client that stops reading does not hold a thread for ever

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self._t0 = time.perf_counter()
        path = unquote(urlsplit(self.path).path)
        if path in ("/health", "/healthz"):
            self._health()
        elif path.startswith("/models/") and path.count("/") == 2:
            self._model(path[len("/models/"):])
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path {path[:100]!r}: use /models/<project> or /health"})

    do_HEAD = do_GET  # noqa: N815

    def _refuse(self) -> None:
        self._t0 = time.perf_counter()
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{self.command} not allowed: this server is read-only"},
                   {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

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
                    log.info("client %s went away during %s: %s", self.client_address[0], model.name, err)
                    self.close_connection = True
                    return
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
        ms = (time.perf_counter() - getattr(self, "_t0", time.perf_counter())) * 1000
        routine = status == HTTPStatus.NO_CONTENT or (status == HTTPStatus.OK and self.path.startswith("/health"))
        level = logging.DEBUG if routine else logging.INFO  # a pull every interval per replica: not news
        log.log(level, '%s "%s %s" %d %d %.1fms %s', self.client_address[0], self.command, self.path[:200], status, size,
                 ms, note)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the stdlib's signature)
        log.debug("%s " + format, self.client_address[0], *args)


def make_server(host: str, port: int, models_dir: Path, zip_cache_dir: Path) -> ModelServer:
    """A bound server (``serve_forever()`` to run, ``shutdown()`` from another thread to stop)."""
    return ModelServer((host, port), models_dir, ZipCache(zip_cache_dir))
