"""What ``nlu-ci serve`` lets through, whichever HTTP server answers: rasa_nlu's Twisted one (``http_guard``) or the
lean aiohttp one (``lean_app``). One set of rules, so both refuse the same requests with the same answers.

* only ``/parse`` (GET, POST), ``/status``, ``/version``, ``/ready`` (GET) and the ``extra`` routes (``/metrics``,
  GET) pass; any other path is 404, another method 405 (with ``Allow``);
* the query string must be UTF-8, a POST body a UTF-8 JSON object (at most ``MAX_DEPTH`` deep) whose ``q`` (or
  ``query``) is a string, the text at most ``max_chars`` characters (413), ``project`` the served one
  (``default``), ``model`` the served model or absent; otherwise 400/404/413 before rasa_nlu's code sees it;
* with a token (``RASA_NLU_TOKEN``) a request without it is 401 (except ``open_routes``: ``/ready``, ``/metrics``).

The request's target is split and its query string parsed as Twisted does (``split_target``: ``&`` and ``;``
separate pairs, blank values kept), so both servers see the same arguments. The limits of a request head
(``MAX_LINE``, ``MAX_HEAD``, ``MAX_HEADERS``) are Twisted's ``HTTPChannel`` defaults; ``MAX_BODY`` is nlu-ci's.
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from nlu_ci import safeio

RASA_ROUTES = {b"/parse": (b"GET", b"POST"), b"/status": (b"GET",), b"/version": (b"GET",), b"/ready": (b"GET",)}
MAX_DEPTH = 32  # a /parse body is {"q": "...", "project": ..., "model": ...}: deeper is not a parse request
MAX_BODY = 4 << 20  # bytes of a request body (Content-Length); more is 413 before it is read
MAX_LINE = 16384  # twisted HTTPChannel.MAX_LENGTH: the request line and each header line
MAX_HEAD = 16384  # twisted HTTPChannel.totalHeadersSize: request line plus header lines
MAX_HEADERS = 500  # twisted HTTPChannel.maxHeaders
PROJECT = "default"  # rasa_nlu's server pulls for its default project only


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def error_body(message: str) -> bytes:
    return (json.dumps({"error": message}, ensure_ascii=True) + "\n").encode()


def parse_qs(qs: bytes) -> dict[bytes, list[bytes]]:
    """twisted.web.http.parse_qs(qs, keep_blank_values=1): what twisted puts in ``request.args``."""
    out: dict[bytes, list[bytes]] = {}
    for s1 in qs.split(b"&"):
        for item in s1.split(b";"):
            k, eq, v = item.partition(b"=")
            if not eq:
                continue
            out.setdefault(unquote_to_bytes(k.replace(b"+", b" ")), []).append(
                unquote_to_bytes(v.replace(b"+", b" ")))
    return out


def split_target(target: bytes) -> tuple[bytes, dict[bytes, list[bytes]]]:
    """(path, args) of a request target, as twisted's ``Request.requestReceived`` makes them (path not unquoted)."""
    path, sep, qs = target.partition(b"?")
    return path, (parse_qs(qs) if sep else {})


def decode_args(args: dict[bytes, list[bytes]]) -> dict[str, list[str]]:
    try:
        return {k.decode("utf-8"): [v.decode("utf-8") for v in vals] for k, vals in args.items()}
    except UnicodeDecodeError:
        raise Refused(400, "the query string is not valid UTF-8") from None


def json_object(raw: bytes) -> dict:
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
    return data


class Rules:
    def __init__(self, *, token: str | None = None, max_chars: int = 10_000,
                 serving_model: Callable[[], str | None] = lambda: None, extra: tuple[bytes, ...] = (),
                 open_routes: tuple[bytes, ...] = ()):
        self.token, self.max_chars, self.serving_model = token, max_chars, serving_model
        self.extra, self.open_routes = extra, open_routes  # extra: GET routes beside rasa_nlu's; open: no token

    def check(self, method: bytes, path: bytes, args: dict[bytes, list[bytes]], body: Callable[[], bytes]) -> None:
        """Raise ``Refused`` unless the request may be answered; ``body()`` returns a POST's body."""
        methods = (b"GET",) if path in self.extra else RASA_ROUTES.get(path)
        if methods is None:
            allowed = b", ".join([*RASA_ROUTES, *self.extra]).decode()
            raise Refused(404, f"no such path {path[:100].decode('utf-8', 'replace')!r}: this server answers {allowed}")
        if method not in methods:
            allow = ", ".join(m.decode() for m in methods)
            raise Refused(405, f"{method[:20].decode('latin-1')} not allowed on {path.decode()}: use {allow}",
                          {"Allow": allow})
        decoded = decode_args(args)
        if self.token is not None and path not in self.open_routes:
            given = (decoded.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise Refused(401, "unauthorized: this server needs ?token=")
        if path == b"/parse":
            params = {k: v[0] for k, v in decoded.items() if v}
            if method == b"POST":
                params = json_object(body())
            self.check_parse(params)

    def check_parse(self, params: dict) -> None:
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
