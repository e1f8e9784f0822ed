"""The lean server's answers (``nlu-ci serve --server lean``, the default): rasa_nlu 0.15's ``/parse``,
``/status``, ``/version`` and nlu-ci's ``/ready``, ``/metrics``, on aiohttp's low-level server, answer for answer
as rasa_nlu's ``RasaNLU`` app behind ``http_guard`` answers them (``tests/serving/test_server_contract.py``).

Same answers because the same code makes them: the request passes ``parse_rules.Rules`` (the guard's rules), the
parse is rasa_nlu's own ``DataRouter.extract`` + ``DataRouter.parse`` (nlu-ci's atomic swap, the observers that
count answers and write the query log), bodies are rasa_nlu's ``json_to_string`` (indent 2, UTF-8; a parse answer
through ``answer_json.dumps``, the same text faster), CORS headers
as its ``check_cors`` sets them with its default origins (``*``). What differs is only the way there: the parse
runs in the event loop's thread (no thread hand-off; one process is one parse at a time, the workers of
``lean_server`` use the other cores), and aiohttp's C parser reads the request.

Twisted's limits of a request head are kept (``parse_rules.MAX_LINE``, ``MAX_HEAD``, ``MAX_HEADERS``, ``MAX_BODY``)
and so are the answers ``http_guard.GuardedChannel`` gives beyond them (414, 431, 413, 400 for a malformed head):
a status line, one JSON line, the connection closed; never aiohttp's text pages or a traceback.
"""
from __future__ import annotations

import contextlib
import logging
import time

from aiohttp import HttpVersion11, web, web_protocol, web_server
from aiohttp.http_exceptions import LineTooLong

from nlu_ci.serving import answer_json
from nlu_ci.serving.parse_rules import (
    MAX_BODY,
    MAX_HEAD,
    MAX_HEADERS,
    MAX_LINE,
    PROJECT,
    Refused,
    Rules,
    error_body,
    parse_qs,
    split_target,
)

log = logging.getLogger(__name__)

JSON = "application/json"
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE"}  # rasa_nlu's check_cors, origins ["*"]
FORM = "application/x-www-form-urlencoded"
# aiohttp's parser limits, one byte apart, so that a LineTooLong names which line it was
URL_LIMIT, FIELD_LIMIT = MAX_LINE + 1, MAX_LINE + 2


def _refusal(request: web.BaseRequest, err: Refused, close: bool = False) -> web.Response:
    log.info('%s "%s %s" %d %s', request.remote or "?", request.method[:20],
             request.raw_path.split("?", 1)[0][:200], err.status, err)
    resp = web.Response(status=err.status, body=error_body(str(err)), headers={"Content-Type": JSON, **err.headers})
    if close:
        resp.force_close()
    return resp


def _head_problem(request: web.BaseRequest) -> Refused | None:
    """What twisted's HTTPChannel would refuse in this request head (its lines counted as it counts them)."""
    total = len(request.method) + len(request.raw_path) + 10  # "GET <target> HTTP/1.1"
    if total > MAX_LINE:
        return Refused(414, f"request line longer than {MAX_LINE} bytes")
    for name, value in request.raw_headers:
        line = len(name) + 2 + len(value)
        if line > MAX_LINE:
            return Refused(431, f"a request header longer than {MAX_LINE} bytes")
        total += line
        if total > MAX_HEAD:
            return Refused(431, f"request headers larger than {MAX_HEAD} bytes")
    if len(request.raw_headers) > MAX_HEADERS:
        return Refused(431, f"more than {MAX_HEADERS} request headers")
    return None


class LeanApp:
    """``handle(request)``: the whole server's answers, over ``router`` (rasa_nlu's ``DataRouter``)."""

    def __init__(self, router, *, metrics, token: str | None, max_chars: int, open_routes: tuple[bytes, ...]):
        from rasa_nlu.data_router import InvalidProjectError
        from rasa_nlu.model import MINIMUM_COMPATIBLE_VERSION
        from rasa_nlu.utils import json_to_string
        from rasa_nlu.version import __version__

        self.router, self.metrics = router, metrics
        self.rules = Rules(token=token, max_chars=max_chars, serving_model=self.serving_model,
                           extra=(b"/metrics",), open_routes=open_routes)
        self.to_json, self.invalid_project = json_to_string, InvalidProjectError
        self.version = json_to_string({"version": __version__, "minimum_compatible_version": MINIMUM_COMPATIBLE_VERSION})

    def serving_model(self) -> str | None:
        from nlu_ci.serving import swap

        project = self.router.project_store.get(PROJECT)
        if project is None:
            return None
        switch = swap._config.get("current")
        if switch is not None:
            switch(project)  # lockstep: the model all workers switched to, as a parse would see it
        return swap.serving_model(project)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        t0 = time.perf_counter()
        target = request.raw_path.encode("utf-8", "surrogateescape")
        path, args = split_target(target)
        try:
            resp = await self._answer(request, path, args)
        except Refused as err:
            resp = _refusal(request, err, close=err.status in (413, 414, 431))
        except Exception as err:  # a handler that raised: one JSON line, one log line, no traceback (JsonRequest)
            log.error('%s "%s %s" 500 internal error: %s: %s', request.remote or "?", request.method[:20],
                      path[:200].decode("utf-8", "replace"), type(err).__name__, " ".join(str(err).split())[:200])
            resp = web.Response(status=500, body=error_body(f"internal error: {type(err).__name__}"),
                                headers={"Content-Type": JSON})
        if path == b"/parse":
            self.metrics.request(resp.status, time.perf_counter() - t0)
        return resp

    async def _answer(self, request: web.BaseRequest, path: bytes, args: dict) -> web.StreamResponse:
        problem = _head_problem(request)
        if problem is not None:
            raise problem
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise Refused(413, f"request body of {length} bytes, more than {MAX_BODY}")
        method = request.method.encode("latin-1")
        body = b""
        if request.body_exists:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:  # a chunked body over the bound (twisted would buffer it)
                raise Refused(413, f"request body larger than {MAX_BODY} bytes") from None
        if method == b"POST" and body and request.content_type == FORM:  # twisted merges a form into request.args
            args = {**args, **parse_qs(body)}
        self.rules.check(method, path, args, lambda: body)
        if path == b"/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            self.metrics.served_name(self.serving_model())  # the stock swap mode does not report its swaps
            return web.Response(body=self.metrics.text(), headers={"Content-Type": CONTENT_TYPE_LATEST})
        if path == b"/ready":
            model = self.serving_model()
            return self._json(request, 200 if model else 503, self.to_json({"ready": bool(model), "model": model}),
                              cors=False)
        if path == b"/version":
            return self._json(request, 200, self.version)
        if path == b"/status":
            self.serving_model()
            return self._json(request, 200, self.to_json(self.router.get_status()))
        return self._parse(request, method, args, body)

    def _parse(self, request, method: bytes, args: dict, body: bytes) -> web.Response:
        """rasa_nlu's ``RasaNLU.parse``, without the thread: its parameters, its answers, its error bodies."""
        import simplejson

        if method == b"GET":
            params = {k.decode("utf-8"): v[0].decode("utf-8") for k, v in args.items()}
        else:
            params = simplejson.loads(body.decode("utf-8"))
        if "query" in params:
            params["q"] = params.pop("query")
        data = self.router.extract(params)
        try:
            return self._json(request, 200, answer_json.dumps(self.router.parse(data)))
        except self.invalid_project as err:
            return self._json(request, 404, self.to_json({"error": f"{err}"}))
        except Exception as err:
            log.error("parse failed: %s: %s", type(err).__name__, " ".join(str(err).split())[:300])
            return self._json(request, 500, self.to_json({"error": f"{err}"}))

    @staticmethod
    def _json(request, status: int, text: str, cors: bool = True) -> web.Response:
        headers = {"Content-Type": JSON}
        if cors and request.headers.get("Origin"):
            headers.update(CORS)
        return web.Response(status=status, body=text.encode("utf-8"), headers=headers)


class _Handler(web_protocol.RequestHandler):
    """aiohttp's connection handler; a request head its parser refuses is answered as ``GuardedChannel`` does."""

    def handle_error(self, request, status=500, exc=None, message=None):
        if isinstance(exc, LineTooLong) and len(exc.args) > 1 and exc.args[1] == URL_LIMIT:
            err = Refused(414, f"request line longer than {MAX_LINE} bytes")
        elif isinstance(exc, LineTooLong):
            err = Refused(431, f"a request header longer than {MAX_LINE} bytes")
        elif exc is not None and "too many headers" in str(exc).lower():
            err = Refused(431, f"more than {MAX_HEADERS} request headers")
        elif status == 500:
            err = Refused(500, "internal error")
        else:
            err = Refused(400, "malformed request line or header")
        log.info("%s bad request: %d %s", request.remote or "?", err.status, err)
        with contextlib.suppress(AttributeError, TypeError, ValueError):  # aiohttp's placeholder head says HTTP/1.0
            request._version = HttpVersion11
            request._cache.pop("version", None)
        resp = web.Response(status=err.status, body=error_body(str(err)), headers={"Content-Type": JSON})
        resp.force_close()
        return resp


class Server(web_server.Server):
    """aiohttp's low-level server (no router, no middlewares) with the handler above and nlu-ci's limits."""

    def __init__(self, app: LeanApp, **kwargs):
        super().__init__(app.handle, access_log=None, max_line_size=URL_LIMIT, max_field_size=FIELD_LIMIT,
                         max_headers=MAX_HEADERS + 1, lingering_time=2.0, **kwargs)

    def _make_request(self, message, payload, protocol, writer, task):
        return web.BaseRequest(message, payload, protocol, writer, task, self._loop, client_max_size=MAX_BODY + 1)

    def __call__(self) -> web_protocol.RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)
