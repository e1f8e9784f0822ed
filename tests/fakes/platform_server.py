"""A Rasa Platform stand-in for tests: a real HTTP server on 127.0.0.1 implementing the API contract.

It is a test double only because the Rasa Platform cannot run here; it keeps the real semantics:

- token check on every request (``api_token`` query parameter or ``Authorization: Bearer``) → 401
- ``GET  /api/projects/{p}/data.json``: the training data it was given (JSON or Markdown)
- ``POST /api/projects/{p}/models/nlu``: multipart field ``model`` = a zip; the body is spooled to disk
  (never held in memory), the zip is unpacked and must be a rasa_nlu model (``metadata.json``), else 400.
  A second upload under an existing name is stored as ``<name>-1`` (as a real registry would keep both):
  duplicates are visible in ``uploads`` and in the model list.
- ``GET  /api/projects/{p}/models/nlu``: ``[{"model", "tags", "uploaded_at"}]`` in upload order
- ``PUT  /api/projects/{p}/models/nlu/{m}/tags/{t}``: 204; the tag moves off every other model
- ``PUT  /api/projects/{p}/evaluations/{m}``: 202; a background thread loads the uploaded model with
  rasa_nlu (``nlu_ci.engine.predict``), parses the server's own held-out examples and computes the
  metrics as rasa_nlu 0.15's ``evaluate`` does (sklearn weighted P/F1, accuracy, classification report,
  per-utterance predictions)
- ``GET  /api/projects/{p}/evaluations/{m}``: 404 before any PUT, 202 while running, 200 with
  ``{"intent_evaluation": {...}}`` when done

Fault injection per endpoint (``data``, ``upload``, ``list``, ``eval_put``, ``eval_get``, ``tag``), consumed
in order, each ``times`` times (``None`` = forever): ``down`` (close the connection without an answer),
``lost`` (do the work, then close the connection without an answer), any status code (``500``, ``503``,
``401``, ``404``, ...; ``429`` with ``retry_after``; optional ``body`` and ``content_type``), ``timeout``
(sleep ``seconds`` before answering), ``malformed`` (invalid JSON with a JSON content type),
``truncated`` (a 200 whose body stops midway and the connection closes),
``content_type`` (an HTML page). ``after=True`` does the work first and then answers with the fault.

Run standalone (for benchmarks): ``python tests/fakes/platform_server.py --token T --port 0`` prints the URL.
"""
from __future__ import annotations

import argparse
import json
import mmap
import re
import shutil
import socket
import tempfile
import threading
import time
import zipfile
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ENDPOINTS = ("data", "upload", "list", "eval_put", "eval_get", "tag")
_ROUTES = [
    (re.compile(r"^/api/projects/([^/]+)/data\.json$"), {"GET": "data"}),
    (re.compile(r"^/api/projects/([^/]+)/models/nlu$"), {"GET": "list", "POST": "upload"}),
    (re.compile(r"^/api/projects/([^/]+)/models/nlu/([^/]+)/tags/([^/]+)$"), {"PUT": "tag"}),
    (re.compile(r"^/api/projects/([^/]+)/evaluations/([^/]+)$"), {"PUT": "eval_put", "GET": "eval_get"}),
]
_CHUNK = 1 << 20


@dataclass
class Fault:
    kind: str | int
    times: int | None = 1
    retry_after: str | None = None
    seconds: float = 0.0
    after: bool = False  # do the work first, then answer with the fault (an answer lost or replaced)
    body: Any = None  # with a status code: the answer's body and content type
    content_type: str = "application/json"


@dataclass
class Model:
    name: str
    path: Path
    tags: set[str] = field(default_factory=set)
    uploaded_at: float = field(default_factory=time.time)


class FakePlatform:
    def __init__(self, token: str | None = "platform-secret-token-0123", project: str = "default",
                 data: dict | str | None = None, data_content_type: str | None = None,
                 held_out: list[dict] | None = None, workdir: Path | str | None = None,
                 eval_delay: float = 0.0, report_as_dict: bool = True):
        self.token = token
        self.project = project
        self.data = data
        self.data_content_type = data_content_type or ("application/json" if not isinstance(data, str)
                                                       else "text/markdown")
        self.held_out = list(held_out or [])
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fake-platform-"))
        self.eval_delay = eval_delay
        self.report_as_dict = report_as_dict
        self.models: dict[str, Model] = {}
        self.uploads: list[str] = []  # names the uploads were stored under, in order (duplicates show)
        self.upload_sizes: list[int] = []
        self.evaluations: dict[str, dict | None] = {}  # model -> None while running, else the answer
        self.evaluation_errors: dict[str, str] = {}
        self.requests: list[dict] = []
        self.faults: dict[str, deque[Fault]] = {e: deque() for e in ENDPOINTS}
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self, port: int = 0) -> FakePlatform:
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self._url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL (still known after ``stop()``: a test may point the job at a dead server)."""
        assert getattr(self, "_url", None), "server not started"
        return self._url

    # ------------------------------------------------------------ test helpers
    def inject(self, endpoint: str, kind: str | int, times: int | None = 1, retry_after: str | None = None,
               seconds: float = 0.0, after: bool = False, body: Any = None,
               content_type: str = "application/json") -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS}")
        if kind == "lost":
            kind, after = "down", True
        with self.lock:
            self.faults[endpoint].append(Fault(kind, times, retry_after, seconds, after, body, content_type))

    def clear_faults(self) -> None:
        with self.lock:
            for q in self.faults.values():
                q.clear()

    def take_fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            q = self.faults[endpoint]
            if not q:
                return None
            fault = q[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    q.popleft()
            return fault

    def add_model(self, model_dir: Path | str, name: str | None = None, tags: tuple[str, ...] = ()) -> str:
        """Put an already unpacked model on the platform (as if uploaded earlier)."""
        model_dir = Path(model_dir)
        name = name or model_dir.name
        dest = self.workdir / "models" / name
        shutil.copytree(model_dir, dest)
        with self.lock:
            self.models[name] = Model(name, dest)
        for tag in tags:
            self.set_tag(name, tag)
        return name

    def set_tag(self, name: str, tag: str) -> None:
        with self.lock:
            for model in self.models.values():
                model.tags.discard(tag)
            self.models[name].tags.add(tag)

    def tagged(self, tag: str = "active") -> list[str]:
        with self.lock:
            return [m.name for m in self.models.values() if tag in m.tags]

    def count(self, endpoint: str, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["endpoint"] == endpoint and (method is None or
                                                                                  r["method"] == method))

    # ------------------------------------------------------------ behaviour
    def authorised(self, query: dict, headers) -> bool:
        if self.token is None:
            return True
        if query.get("api_token", [None])[0] == self.token:
            return True
        auth = headers.get("Authorization") or ""
        return auth == f"Bearer {self.token}"

    def store_upload(self, body_file: Path, content_type: str) -> tuple[int, dict]:
        match = re.search(r'boundary="?([^";]+)"?', content_type or "")
        if not content_type.startswith("multipart/form-data") or not match:
            return 400, {"message": "expected multipart/form-data"}
        part = _multipart_file(body_file, match.group(1).encode(), b"model")
        if part is None:
            return 400, {"message": "multipart field 'model' missing"}
        filename, start, end = part
        zip_path = body_file.with_suffix(".zip")
        with open(body_file, "rb") as src, open(zip_path, "wb") as dst:
            src.seek(start)
            remaining = end - start
            while remaining:
                chunk = src.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                dst.write(chunk)
                remaining -= len(chunk)
        if not zipfile.is_zipfile(zip_path):
            return 400, {"message": "the uploaded file is not a zip"}
        base = re.sub(r"\.zip$", "", Path(filename or "model.zip").name) or "model"
        with self.lock:
            name, n = base, 1
            while name in self.models:
                name, n = f"{base}-{n}", n + 1
            dest = self.workdir / "models" / name
            self.models[name] = Model(name, dest)  # reserve the name
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise ValueError(f"unsafe path {member!r}")
                zf.extractall(dest)
            if not (dest / "metadata.json").is_file():
                raise ValueError("no metadata.json at the zip root: not a rasa_nlu model")
        except (ValueError, zipfile.BadZipFile, OSError) as err:
            with self.lock:
                self.models.pop(name, None)
            shutil.rmtree(dest, ignore_errors=True)
            return 400, {"message": f"invalid model: {err}"}
        finally:
            zip_path.unlink(missing_ok=True)
        with self.lock:
            self.uploads.append(name)
            self.upload_sizes.append(end - start)
        return 201, {"model": name}

    def start_evaluation(self, name: str) -> None:
        with self.lock:
            self.evaluations[name] = None
        threading.Thread(target=self._evaluate, args=(name,), daemon=True).start()

    def _evaluate(self, name: str) -> None:
        try:
            if self.eval_delay:
                time.sleep(self.eval_delay)
            answer = evaluate_like_rasa(self.models[name].path, self.held_out, self.report_as_dict)
        except Exception as err:  # noqa: BLE001 - recorded, and the GET answers 500
            with self.lock:
                self.evaluation_errors[name] = f"{type(err).__name__}: {err}"
            return
        with self.lock:
            self.evaluations[name] = answer


def evaluate_like_rasa(model_dir: Path, examples: list[dict], report_as_dict: bool = True) -> dict:
    """rasa_nlu 0.15 ``evaluate`` intent metrics, computed from real predictions of the model."""
    from sklearn.metrics import accuracy_score, classification_report, precision_recall_fscore_support

    from nlu_ci.engine.predict import load_model, predict

    if not examples:
        raise ValueError("the platform has no held-out data")
    interpreter = load_model(model_dir)
    predictions = predict(interpreter, [e["text"] for e in examples])
    targets = [e["intent"] for e in examples]
    predicted = [p["intent"] or "None" for p in predictions]
    precision, _, f1, _ = precision_recall_fscore_support(targets, predicted, average="weighted", zero_division=0)
    report = classification_report(targets, predicted, output_dict=report_as_dict, zero_division=0)
    return {"intent_evaluation": {
        "f1_score": float(f1), "precision": float(precision), "accuracy": float(accuracy_score(targets, predicted)),
        "report": report,
        "predictions": [{"text": e["text"], "intent": e["intent"], "predicted": p["intent"],
                         "confidence": p["confidence"]} for e, p in zip(examples, predictions, strict=True)],
    }}


def _multipart_file(body: Path, boundary: bytes, field_name: bytes) -> tuple[str, int, int] | None:
    """(filename, start, end) of the part named ``field_name`` in a multipart body on disk (mmap, no copy)."""
    if body.stat().st_size == 0:
        return None
    with open(body, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        delimiter = b"--" + boundary
        pos = mm.find(delimiter)
        while pos != -1:
            header_start = pos + len(delimiter)
            if mm[header_start:header_start + 2] == b"--":
                return None  # the closing delimiter
            header_end = mm.find(b"\r\n\r\n", header_start)
            if header_end == -1:
                return None
            headers = mm[header_start:header_end].decode("utf-8", "replace")
            content_start = header_end + 4
            next_pos = mm.find(b"\r\n" + delimiter, content_start)
            if next_pos == -1:
                return None
            disposition = re.search(r'(?i)content-disposition:[^\r\n]*\bname="([^"]*)"', headers)
            if disposition and disposition.group(1).encode() == field_name:
                filename = re.search(r'filename="([^"]*)"', headers)
                return (filename.group(1) if filename else ""), content_start, next_pos
            pos = next_pos + 2
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that gave up (timeout test) is no error
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


def _handler(platform: FakePlatform):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        # -------------------------------------------------------- responses
        def send(self, status: int, body: Any = None, content_type: str = "application/json",
                 headers: dict | None = None) -> None:
            raw = b"" if body is None else body if isinstance(body, bytes) else \
                body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            if raw or status not in (204, 304):
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if raw:
                self.wfile.write(raw)
            self.status = status

        def drop(self) -> None:
            """Close the connection without answering (as a crashed server or a cut network does)."""
            self.status = "dropped"
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def read_body(self) -> Path | None:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return None
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".body", dir=platform.workdir)
            with open(fd, "wb") as fh:
                remaining = length
                while remaining:
                    chunk = self.rfile.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    fh.write(chunk)
                    remaining -= len(chunk)
            return Path(tmp)

        # -------------------------------------------------------- dispatch
        def do_GET(self):
            self.dispatch("GET")

        def do_POST(self):
            self.dispatch("POST")

        def do_PUT(self):
            self.dispatch("PUT")

        def dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            endpoint, args = None, ()
            for pattern, methods in _ROUTES:
                m = pattern.match(url.path)
                if m:
                    endpoint, args = methods.get(method), tuple(unquote(g) for g in m.groups())
                    break
            self.status = None
            record = {"method": method, "path": url.path, "endpoint": endpoint, "status": None,
                      "query_keys": sorted(query)}
            with platform.lock:  # recorded before answering: the client may act on the answer at once
                platform.requests.append(record)
            body_file = self.read_body() if method in ("POST", "PUT") and endpoint else None
            try:
                self.route(method, endpoint, args, query, body_file)
            finally:
                record["status"] = self.status
                if body_file is not None:
                    body_file.unlink(missing_ok=True)

        def route(self, method: str, endpoint: str | None, args: tuple, query: dict, body_file: Path | None):
            if endpoint is None:
                self.send(404 if not args else 405, {"message": f"no route {method} {urlsplit(self.path).path}"})
                return
            fault = platform.take_fault(endpoint)
            if fault is not None and not fault.after:
                if fault.kind == "timeout":
                    time.sleep(fault.seconds)
                elif self.fail(fault):
                    return
            if not platform.authorised(query, self.headers):
                self.send(401, {"message": "unauthorized: invalid or missing api token"})
                return
            if args[0] != platform.project:
                self.send(404, {"message": f"project {args[0]!r} not found"})
                return
            status, body, ctype = getattr(self, "ep_" + endpoint)(*args[1:], body_file=body_file)
            if fault is not None and fault.after and self.fail(fault):
                return
            self.send(status, body, ctype)

        def fail(self, fault: Fault) -> bool:
            """Answer with the fault; True when the request is done."""
            if fault.kind == "down":
                self.drop()
            elif fault.kind == "malformed":
                self.send(200, b'{"rasa_nlu_data": {"common_examples": [', "application/json")
            elif fault.kind == "truncated":  # promises more than it sends, then hangs up
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b'{"rasa_nlu_data": {"common_examples": [')
                self.wfile.flush()
                self.drop()
            elif fault.kind == "content_type":
                self.send(200, b"<html><body>Login</body></html>", "text/html")
            elif isinstance(fault.kind, int):
                headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
                body = fault.body if fault.body is not None else {"message": f"injected {fault.kind}"}
                self.send(fault.kind, body, fault.content_type, headers=headers)
            else:
                raise ValueError(f"unknown fault {fault.kind!r}")
            return True

        # -------------------------------------------------------- endpoints
        def ep_data(self, body_file=None):
            if platform.data is None:
                return 404, {"message": "no training data"}, "application/json"
            if isinstance(platform.data, str):
                return 200, platform.data, platform.data_content_type
            return 200, json.dumps(platform.data), platform.data_content_type

        def ep_list(self, body_file=None):
            with platform.lock:
                return 200, [{"model": m.name, "tags": sorted(m.tags), "uploaded_at": m.uploaded_at}
                             for m in platform.models.values()], "application/json"

        def ep_upload(self, body_file=None):
            if body_file is None:
                return 400, {"message": "empty body"}, "application/json"
            status, body = platform.store_upload(body_file, self.headers.get("Content-Type") or "")
            return status, body, "application/json"

        def ep_tag(self, model, tag, body_file=None):
            with platform.lock:
                if model not in platform.models:
                    return 404, {"message": f"model {model!r} not found"}, "application/json"
                platform.set_tag(model, tag)
            return 204, None, "application/json"

        def ep_eval_put(self, model, body_file=None):
            with platform.lock:
                if model not in platform.models:
                    return 404, {"message": f"model {model!r} not found"}, "application/json"
            platform.start_evaluation(model)
            return 202, {"status": "started"}, "application/json"

        def ep_eval_get(self, model, body_file=None):
            with platform.lock:
                if model in platform.evaluation_errors:
                    return 500, {"message": f"evaluation failed: {platform.evaluation_errors[model]}"}, \
                        "application/json"
                if model not in platform.evaluations:
                    return 404, {"message": f"no evaluation of {model!r}"}, "application/json"
                answer = platform.evaluations[model]
            if answer is None:
                return 202, {"status": "running"}, "application/json"
            return 200, answer, "application/json"

    return Handler


def main() -> None:  # pragma: no cover - used by the benchmark
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--token", default="platform-secret-token-0123")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    platform = FakePlatform(token=args.token, workdir=args.workdir).start(args.port)
    print(platform.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        platform.stop()


if __name__ == "__main__":
    main()
