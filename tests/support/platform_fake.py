"""A Rasa Platform stand-in for tests: a real HTTP server on 127.0.0.1 implementing the API contract.

It is a test double only because the Rasa Platform cannot run here; it keeps the real semantics:

- token check on every request (``api_token`` query parameter or ``Authorization: Bearer``) → 401, before
  anything else (an injected fault included, as a real gateway checks the token first); a token can
  expire (``token_ttl`` seconds after start, or ``expire_token()``) → 401 ``token expired``
- ``GET  /api/projects/{p}/data.json``: the training data it was given (JSON or Markdown)
- ``POST /api/projects/{p}/models/nlu``: multipart field ``model`` = a zip; the body is spooled to disk
  (never held in memory), the zip is unpacked and must be a rasa_nlu model (``metadata.json``), else 400.
  A second upload under a name that exists (or is being stored) is refused with 409 Conflict, as the
  real registry refuses a name collision. A body over ``max_upload_bytes`` → 413. An optional multipart
  field ``sha256`` is kept and listed with the model (the client's proof that a model is its own upload).
  A model is listed once it is completely stored (``store_delay``: seconds that takes).
- ``GET  /api/projects/{p}/models/nlu``: ``[{"model", "tags", "uploaded_at", "sha256"?}]`` in upload order
- ``PUT  /api/projects/{p}/models/nlu/{m}/tags/{t}``: 204; the tag moves off every other model (atomically:
  concurrent PUTs leave exactly one model tagged); ``race_tag(model)`` makes another writer move the tag
  to ``model`` right after the next PUT is answered (a tag race)
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
``content_type`` (an HTML page), ``cut`` (do the work, then send half of the real answer and hang up).
``after=True`` does the work first and then answers with the fault.

Run standalone (for benchmarks): ``PYTHONPATH=tests python -m support.platform_fake --token T`` prints the URL.
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
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from support.http import LoopbackServer

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
    sha256: str | None = None
    stored: bool = True  # False while the upload is being unpacked (the name is taken, not yet listed)


class FakePlatform(LoopbackServer):
    def __init__(self, token: str | None = "platform-secret-token-0123", project: str = "default",
                 data: dict | str | None = None, data_content_type: str | None = None,
                 held_out: list[dict] | None = None, workdir: Path | str | None = None,
                 eval_delay: float = 0.0, report_as_dict: bool = True, max_upload_bytes: int | None = None,
                 token_ttl: float | None = None, store_delay: float = 0.0):
        self.token = token
        self.store_delay = store_delay  # seconds an upload takes to be stored after its name is reserved
        self.token_ttl = token_ttl
        self.token_expires: float | None = None
        self.max_upload_bytes = max_upload_bytes
        self._tag_races: deque[str] = deque()
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
        super().__init__()

    # ------------------------------------------------------------ lifecycle
    def handler_class(self):
        return _handler(self)

    def start(self) -> FakePlatform:
        if self.token_ttl is not None:
            self.token_expires = time.monotonic() + self.token_ttl
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

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

    def expire_token(self) -> None:
        """From now on the token is refused (401 ``token expired``), as after its lifetime ends."""
        self.token_expires = time.monotonic()

    def race_tag(self, other: str) -> None:
        """Right after the next tag PUT is answered, another writer moves the tag to ``other``."""
        with self.lock:
            self._tag_races.append(other)

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
    def authorised(self, query: dict, headers) -> str | None:
        """None when the request may go on, else why not (the 401's message)."""
        if self.token is None:
            return None
        auth = headers.get("Authorization") or ""
        if query.get("api_token", [None])[0] != self.token and auth != f"Bearer {self.token}":
            return "unauthorized: invalid or missing api token"
        if self.token_expires is not None and time.monotonic() >= self.token_expires:
            return "unauthorized: token expired"
        return None

    def store_upload(self, body_file: Path, content_type: str) -> tuple[int, dict]:
        match = re.search(r'boundary="?([^";]+)"?', content_type or "")
        if not content_type.startswith("multipart/form-data") or not match:
            return 400, {"message": "expected multipart/form-data"}
        part = _multipart_file(body_file, match.group(1).encode(), b"model")
        if part is None:
            return 400, {"message": "multipart field 'model' missing"}
        filename, start, end = part
        digest = _multipart_file(body_file, match.group(1).encode(), b"sha256")
        sha256 = None
        if digest is not None:
            with open(body_file, "rb") as fh:
                fh.seek(digest[1])
                sha256 = fh.read(min(digest[2] - digest[1], 128)).decode("ascii", "replace").strip()
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
        name = re.sub(r"\.zip$", "", Path(filename or "model.zip").name) or "model"
        with self.lock:
            if name in self.models:
                zip_path.unlink(missing_ok=True)
                return 409, {"message": f"a model named {name!r} already exists"}
            dest = self.workdir / "models" / name
            self.models[name] = Model(name, dest, sha256=sha256, stored=False)  # reserve the name
        if self.store_delay:
            time.sleep(self.store_delay)  # a big model being unpacked: the name is taken, not yet listed
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
            self.models[name].stored = True
            self.models[name].uploaded_at = time.time()
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


def _handler(platform: FakePlatform):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet
            pass

        # -------------------------------------------------------- responses
        cut = False  # a ``cut`` fault: the answer stops after half its body

        def send(self, status: int, body: Any = None, content_type: str = "application/json",
                 headers: dict | None = None) -> None:
            raw = b"" if body is None else body if isinstance(body, bytes) else \
                body.encode() if isinstance(body, str) else json.dumps(body).encode()
            if self.cut:
                raw = raw or b'{"model": "x"}'
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw[: len(raw) // 2])
                self.wfile.flush()
                self.drop()
                self.status = f"{status} cut"
                return
            self.status = status  # what the server answered, even if the client is gone before it is sent
            self.send_response(status)
            if raw or status not in (204, 304):
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if raw:
                self.wfile.write(raw)

        def drop(self) -> None:
            """Close the connection without answering (as a crashed server or a cut network does)."""
            self.status = "dropped"
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def discard_body(self) -> None:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                chunk = self.rfile.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)

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
            refused = platform.authorised(query, self.headers) if endpoint else None
            too_large = (endpoint == "upload" and platform.max_upload_bytes is not None
                         and int(self.headers.get("Content-Length") or 0) > platform.max_upload_bytes)
            if refused or too_large:  # the body is read and dropped, never stored
                self.discard_body()
                body_file = None
            else:
                body_file = self.read_body() if method in ("POST", "PUT") and endpoint else None
            try:
                if refused:
                    self.send(401, {"message": refused})
                elif too_large:
                    self.send(413, {"message": f"the upload is larger than {platform.max_upload_bytes} bytes"})
                else:
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
                elif fault.kind == "cut":
                    self.cut = True
                elif self.fail(fault):
                    return
            if args[0] != platform.project:
                self.send(404, {"message": f"project {args[0]!r} not found"})
                return
            status, body, ctype = getattr(self, "ep_" + endpoint)(*args[1:], body_file=body_file)
            if fault is not None and fault.after and self.fail(fault):
                return
            self.send(status, body, ctype)
            race = getattr(self, "race", None)
            if race is not None:  # another writer, right after this answer
                platform.set_tag(*race)

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
                             | ({"sha256": m.sha256} if m.sha256 else {})
                             for m in platform.models.values() if m.stored], "application/json"

        def ep_upload(self, body_file=None):
            if body_file is None:
                return 400, {"message": "empty body"}, "application/json"
            status, body = platform.store_upload(body_file, self.headers.get("Content-Type") or "")
            return status, body, "application/json"

        def ep_tag(self, model, tag, body_file=None):
            with platform.lock:
                if model not in platform.models or not platform.models[model].stored:
                    return 404, {"message": f"model {model!r} not found"}, "application/json"
                platform.set_tag(model, tag)
                self.race = (platform._tag_races.popleft(), tag) if platform._tag_races else None
            return 204, None, "application/json"

        def ep_eval_put(self, model, body_file=None):
            with platform.lock:
                if model not in platform.models or not platform.models[model].stored:
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
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    platform = FakePlatform(token=args.token, workdir=args.workdir).start()
    print(platform.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        platform.stop()


if __name__ == "__main__":
    main()
