"""Rasa Platform HTTP client: pull training data, upload a model, list models, evaluate, tag.

The contract (``{p}`` = project; auth = ``api_token`` query parameter, or ``Authorization: Bearer``):

  GET  /api/projects/{p}/data.json                    training data (Rasa NLU JSON or Markdown)
  POST /api/projects/{p}/models/nlu                   multipart field ``model``: the zipped model folder
  GET  /api/projects/{p}/models/nlu                   [{"model": name, "tags": [...]}, ...]
  PUT  /api/projects/{p}/evaluations/{model}          start an evaluation on the platform's held-out data
  GET  /api/projects/{p}/evaluations/{model}          {"intent_evaluation": {f1_score, precision, accuracy,
                                                       report, predictions}} once it is done
  PUT  /api/projects/{p}/models/nlu/{model}/tags/{t}  204/200; a tag lives on one model at a time

Every request has connect and read timeouts. Connection errors, timeouts, 429 (``Retry-After`` honoured)
and 502/503/504 are retried with exponential backoff and full jitter (tenacity); every other answer
that is not a success fails at once with a one-line ``PlatformError`` naming the method and the path.
401/403 are ``PlatformError`` (exit 1) too: a token that expired or was rotated is a runtime condition
of the platform, fixed without touching the job's configuration (see docs/platform.md).
An upload is retried only after the model list shows the earlier attempt did not arrive, and a 409 on
a retry is checked against the list (the upload's SHA-256), so a lost answer never makes a duplicate. The token never appears in a message: every URL goes through
``nlu_ci.redact`` and the token is registered there when the client is made.
"""
from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from requests_toolbelt import MultipartEncoder
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from nlu_ci import deadline, redact, safeio
from nlu_ci.data import safety as datasafety
from nlu_ci.errors import ConfigError, DataError, PlatformError
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.registry.platform_answers import (
    _connection_reason,
    _content_type,
    _safe_text,
    _uploaded_name,
    parse_evaluation,
    parse_retry_after,
    place_training_data,
)
from nlu_ci.registry.zipping import zipped

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
EVAL_PENDING = frozenset({202, 204, 404})  # after a successful PUT: not there yet
MAX_BODY_SNIPPET = 160


class TransientError(PlatformError):
    """A failure worth retrying (connection, timeout, 429, 502/503/504)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _one_line(text: str, limit: int = MAX_BODY_SNIPPET) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PlatformClient:
    """One Rasa Platform project. Methods raise ``PlatformError`` (exit 1) with a one-line message."""

    def __init__(self, host: str, token: str | None, project: str = "default", tag: str = "active",
                 auth: str = "query", timeout: float = 10.0, retries: int = 5, eval_timeout: float = 300.0,
                 poll_interval: float = 2.0, backoff: float = 0.5, backoff_max: float = 30.0,
                 max_retry_after: float = 120.0, session: requests.Session | None = None):
        if not host or not host.startswith(("http://", "https://")):
            raise ConfigError(f"RASA_PLATFORM_HOST: {redact.redact(host)!r} must start with http:// or https://")
        if auth not in ("query", "bearer"):
            raise ConfigError(f"RASA_PLATFORM_AUTH: {auth!r} must be 'query' or 'bearer'")
        redact.register(token)
        if auth == "query" and host.startswith("http://") and token:
            log.warning("RASA_PLATFORM_AUTH=query over http://: the token travels in clear in the URL (and proxy "
                        "logs); use https:// and bearer")
        self.host = host.rstrip("/")
        self.token = token
        self.project = project
        self.tag_name = tag
        self.auth = auth
        self.timeout = float(timeout)
        self.retries = max(1, int(retries))
        self.eval_timeout = float(eval_timeout)
        self.poll_interval = float(poll_interval)
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", "nlu-ci")
        self._sleep: Callable[[float], None] = time.sleep
        self.uploaded: dict[str, str] = {}  # local model name -> the name the platform stored it under

    @classmethod
    def from_settings(cls, settings, **overrides: Any) -> PlatformClient:
        values = dict(
            host=settings.platform_host, token=settings.api_token, project=settings.project,
            tag=settings.platform_tag, auth=settings.platform_auth, timeout=settings.http_timeout,
            retries=settings.http_retries, eval_timeout=settings.eval_timeout,
        )
        for name, attr in (("poll_interval", "eval_poll_interval"), ("backoff", "http_backoff")):
            value = getattr(settings, attr, None)  # options added with the platform wiring
            if value is not None:
                values[name] = value
        values.update(overrides)
        return cls(**values)

    # ------------------------------------------------------------ plumbing
    def path(self, *parts: str) -> str:
        quoted = [requests.utils.quote(str(p), safe="") for p in parts]
        return "/".join([f"/api/projects/{requests.utils.quote(self.project, safe='')}", *quoted])

    def where(self, method: str, path: str) -> str:
        return redact.redact(f"platform {method} {self.host}{path}")

    def _auth(self, kwargs: dict) -> dict:
        if not self.token:
            return kwargs
        if self.auth == "bearer":
            kwargs["headers"] = dict(kwargs.get("headers") or {}, Authorization=f"Bearer {self.token}")
        else:
            kwargs["params"] = dict(kwargs.get("params") or {}, api_token=self.token)
        return kwargs

    def _send(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        """One attempt. Returns a response whose status is in ``ok``; raises TransientError or PlatformError."""
        where = self.where(method, path)
        kwargs = self._auth(kwargs)
        kwargs.setdefault("timeout", (self.timeout, self.timeout))
        # a total deadline (connect + answer, + sending a body at MIN_RATE): a trickled answer never times out
        seconds = 2 * self.timeout + getattr(kwargs.get("data"), "len", 0) / deadline.MIN_RATE
        try:
            response = deadline.run(lambda: self.session.request(method, self.host + path, **kwargs), seconds,
                                    what=f"{where}: the answer", error=TransientError)
        except requests.Timeout as err:
            kind = "connect timeout" if isinstance(err, requests.ConnectTimeout) else "read timeout"
            raise TransientError(f"{where}: {kind} after {self.timeout:g}s") from None
        except requests.ConnectionError as err:
            raise TransientError(f"{where}: cannot connect: {_connection_reason(err)}") from None
        except requests.exceptions.ChunkedEncodingError:  # the answer was cut off: the request may have been served
            raise TransientError(f"{where}: the answer was cut off before its end") from None
        except requests.RequestException as err:
            raise PlatformError(f"{where}: request failed: {type(err).__name__}") from None
        status = response.status_code
        if status in ok:
            return response
        detail = f"{where}: HTTP {status} {response.reason or ''}".rstrip()
        body = _one_line(redact.redact(_safe_text(response)))
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(detail + (f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""),
                                 retry_after)
        if status in (401, 403):
            raise PlatformError(f"{detail}: the platform refused the API token "
                                "(check RASA_API_TOKEN_FILE / RASA_API_TOKEN and RASA_PLATFORM_AUTH)")
        raise PlatformError(detail + (f": {body}" if body else ""))

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return retry_after + random.uniform(0, self.backoff)
        return wait_random_exponential(multiplier=self.backoff, max=self.backoff_max)(state)

    def _retrying(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one attempt each call) with the retry policy; the final error says how many attempts."""

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception()
            log.warning("%s; retrying in %.1fs (attempt %d of %d)", exc, state.next_action.sleep,
                        state.attempt_number, self.retries)

        def retryable(exc: BaseException) -> bool:
            if not isinstance(exc, TransientError):
                return False
            if exc.retry_after is not None and exc.retry_after > self.max_retry_after:
                return False  # the platform asks for a pause longer than a run should wait
            return True

        retrying = Retrying(stop=stop_after_attempt(self.retries), wait=self._wait, retry=retry_if_exception(retryable),
                            before_sleep=before_sleep, sleep=lambda s: self._sleep(s), reraise=True)
        try:
            return retrying(fn)
        except TransientError as err:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise PlatformError(f"{err} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})") from None

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        """A request with retries (only for idempotent requests: every one of the contract but the upload)."""
        return self._retrying(lambda: self._send(method, path, ok, **kwargs))

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        where = self.where(method, path)
        ctype = _content_type(response)
        if ctype and "json" not in ctype:
            raise PlatformError(f"{where}: expected JSON, got content type {ctype!r}")
        try:
            return response.json()
        except ValueError:
            snippet = _one_line(redact.redact(_safe_text(response)), 60)
            raise PlatformError(f"{where}: malformed JSON in the answer ({snippet!r})") from None

    # ------------------------------------------------------------ data
    def data_url(self) -> str:
        """The training data's URL without credentials (for reports)."""
        return redact.redact(self.host + self.path("data.json"))

    def download_data(self, dest_dir: str | Path) -> Path:
        """Fetch the training data into ``dest_dir`` as ``data.json`` or ``data.md`` (by content); validate it."""
        path = self.path("data.json")
        where = self.where("GET", path)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        tmp = dest_dir / ".data.download"

        datasafety.mark_remote(dest_dir)  # platform data may never name a local file (lookup tables)
        cap, received = safeio.limit("data"), [0]

        def fetch() -> str:  # one attempt: an answer cut off midway is retried like a failed request
            received[0] = 0
            response = self._send("GET", path, stream=True)
            try:
                with open(tmp, "wb") as fh:
                    for chunk in response.iter_content(1 << 16):
                        fh.write(chunk)
                        received[0] += len(chunk)
                        if received[0] > cap:
                            raise PlatformError(f"{where}: training data larger than {cap} bytes: refused "
                                                "(NLU_CI_MAX_DATA_BYTES)")
            except requests.RequestException as err:
                tmp.unlink(missing_ok=True)
                raise TransientError(f"{where}: download interrupted: {type(err).__name__}") from None
            except OSError as err:
                raise PlatformError(f"{where}: cannot write {tmp}: {err.strerror or err}") from None
            finally:
                response.close()
            return _content_type(response)

        ctype = self._retrying(lambda: deadline.run(  # the body too (slower than MIN_RATE past it: a hang)
            fetch, 2 * self.timeout, what=f"{where}: the training data", progress=lambda: received[0],
            error=TransientError))
        target = place_training_data(tmp, ctype, dest_dir, where)
        from nlu_ci.data.dataset import load_training_data

        try:
            load_training_data(target)
        except DataError as err:
            raise DataError(f"{where}: training data unusable: {err}") from None
        size = target.stat().st_size
        log.info("downloaded training data from %s (%d bytes) to %s", where, size, target)
        return target

    # ------------------------------------------------------------ models
    def list_models(self) -> list[dict]:
        """``[{"model": name, "tags": [...]}, ...]`` as the platform lists them (validated)."""
        path = self.path("models", "nlu")
        body = self._json(self.request("GET", path), "GET", path)
        where = self.where("GET", path)
        if isinstance(body, dict) and isinstance(body.get("models"), list):
            body = body["models"]  # some installs wrap the list
        if not isinstance(body, list):
            raise PlatformError(f"{where}: expected a list of models, got {type(body).__name__}")
        out = []
        for i, item in enumerate(body):
            if not isinstance(item, dict) or not isinstance(item.get("model"), str):
                raise PlatformError(f"{where}: model list entry {i} has no 'model' name")
            tags = item.get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise PlatformError(f"{where}: model {item['model']!r}: 'tags' must be a list of strings")
            out.append(dict(item, tags=list(tags)))
        return out

    def model_names(self) -> list[str]:
        return [m["model"] for m in self.list_models()]

    def active_model(self) -> str | None:
        """The model carrying the serving tag (``tag``), or None (bootstrap)."""
        tagged = [m["model"] for m in self.list_models() if self.tag_name in m["tags"]]
        if len(tagged) > 1:
            log.warning("platform: %d models carry the tag %r (%s); using the first", len(tagged), self.tag_name,
                        ", ".join(tagged))
        return tagged[0] if tagged else None

    def previous_model(self, current: str | None = None) -> str | None:
        """The newest model (by name: names are timestamps) older than ``current`` (default: the tagged one)."""
        names = sorted(set(self.model_names()))
        current = current or self.active_model()
        if current not in names:
            return None
        i = names.index(current)
        return names[i - 1] if i > 0 else None

    def upload_model(self, model_dir: str | Path, name: str | None = None,
                     scratch_dir: str | Path | None = None) -> str:
        """Zip the model folder and stream it as multipart field ``model``; return the platform's model name.

        The zip is written to disk first and streamed from there (memory does not grow with its size).
        A retried upload never leaves a duplicate: the upload carries the zip's SHA-256 (field ``sha256``);
        before a retry the model list is checked, and when the earlier attempt arrived after all (its answer
        was lost) the model is not sent again. An attempt the platform refuses with 409 (the name exists,
        e.g. an earlier attempt still being stored) waits until the list shows the name: when its hash is
        ours (or the platform lists no hash and this is a retry) the upload is done, else it is a name
        collision (PlatformError). The zip is written in ``scratch_dir`` (default: the system temp dir)
        and removed afterwards.
        """
        model_dir = Path(model_dir)
        name = name or model_dir.name
        path = self.path("models", "nlu")
        where = self.where("POST", path)
        attempts = 0

        def listed() -> dict | None:
            """The list entry named ``name`` (None if absent); PlatformError when it is someone else's model."""
            entry = next((m for m in self.list_models() if m["model"] == name), None)
            if entry is None:
                return None
            theirs = entry.get("sha256")
            if (theirs and theirs != digest) or (not theirs and attempts == 1):
                raise PlatformError(f"{where}: the platform already has a different model named {name!r} "
                                    "(name collision); nothing was uploaded over it")
            return entry

        def once() -> str:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and listed() is not None:
                log.info("platform already has %s (an earlier upload attempt arrived): not uploading again", name)
                return name
            with open(zip_path, "rb") as fh:
                encoder = MultipartEncoder(fields={"model": (f"{name}.zip", fh, "application/zip"), "sha256": digest})
                response = self._send("POST", path, ok=(200, 201, 202, 204, 409), data=encoder,
                                      headers={"Content-Type": encoder.content_type})
            if response.status_code != 409:
                return _uploaded_name(response) or name
            deadline = time.monotonic() + self.eval_timeout  # an earlier attempt may still be being stored
            while listed() is None:
                if time.monotonic() >= deadline:
                    raise PlatformError(f"{where}: HTTP 409 (the name {name!r} is taken) but the platform did not "
                                        f"list it within {self.eval_timeout:g}s (NLU_CI_EVAL_TIMEOUT)")
                self._sleep(self.poll_interval)
            log.info("platform has %s from an earlier upload attempt (409 on the retry): not uploading again", name)
            return name

        with zipped(model_dir, scratch_dir) as zip_path:
            size = zip_path.stat().st_size
            with open(zip_path, "rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
            t0 = time.perf_counter()
            result = self._retrying(once)
        self.uploaded[name] = result
        log.info("uploaded %s to %s (%.1f MB zip, %.1fs)", result, where, size / 1e6, time.perf_counter() - t0)
        return result

    def tag(self, model: str, tag: str | None = None) -> None:
        """Put the serving tag (or ``tag``) on ``model``; the platform moves it off the model that had it."""
        path = self.path("models", "nlu", model, "tags", tag or self.tag_name)
        self.request("PUT", path, ok=(200, 201, 204))
        log.info("platform: tagged %s as %r", model, tag or self.tag_name)

    # ------------------------------------------------------------ evaluation
    def evaluate(self, model: str) -> EvaluationResult:
        """Ask the platform to evaluate ``model`` on its held-out data (PUT), then poll (GET) for the result."""
        path = self.path("evaluations", model)
        response = self.request("PUT", path, ok=(200, 201, 202, 204))
        if response.status_code == 200 and response.content and "json" in _content_type(response):
            body = self._json(response, "PUT", path)
            if isinstance(body, dict) and "intent_evaluation" in body:
                return parse_evaluation(body, self.where("PUT", path))
        deadline = time.monotonic() + self.eval_timeout
        while True:
            response = self.request("GET", path, ok=(200, *EVAL_PENDING))
            if response.status_code == 200:
                body = self._json(response, "GET", path)
                if isinstance(body, dict) and body.get("intent_evaluation") is not None:
                    return parse_evaluation(body, self.where("GET", path))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PlatformError(f"{self.where('GET', path)}: no evaluation result within "
                                    f"{self.eval_timeout:g}s (NLU_CI_EVAL_TIMEOUT)")
            self._sleep(min(self.poll_interval, remaining))
