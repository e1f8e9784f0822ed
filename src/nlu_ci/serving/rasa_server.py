"""``nlu-ci serve --server rasa``: rasa_nlu 0.15's own HTTP server (its ``RasaNLU`` app and ``DataRouter``: ``/parse``, ``/status``,
``/version`` answer exactly as with ``python -m rasa_nlu.server``), pulling its model from a model URL.

Why not ``rasa_nlu.server.main``: it binds 0.0.0.0 whatever one asks, reads a module global set only under
``__main__``, and starts logging to stdout. This module builds the same two objects its ``main`` builds and
listens on ``--host``/``--port``. Before rasa_nlu loads anything, ``nlu_ci.engine`` is imported, so nlu-ci's
compatibility shims are in place (nlu-ci's components and scikit-learn pickles load as in ``nlu-ci run``).

rasa_nlu's server pulls for its ``default`` project only: one ``nlu-ci serve`` (one Deployment) per project.
One route is added: ``GET /ready`` is 200 once a pulled model answers (before that rasa_nlu answers with its
keyword fallback, which knows no intents), else 503: the readiness probe.
"""
from __future__ import annotations

import logging
import shutil
import tempfile

import nlu_ci.engine  # noqa: F401  (nlu-ci's compat shims, before any rasa_nlu import: see the module docstring)
from nlu_ci.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000


def platform_model_url(platform_host: str, project: str, tag: str) -> str:
    """Where the Rasa Platform serves the model carrying ``tag`` in the same protocol."""
    from urllib.parse import quote

    return f"{platform_host.rstrip('/')}/api/projects/{quote(project, safe='')}/models/tags/{quote(tag, safe='')}"


def endpoint_config(settings):
    """rasa_nlu's ``EndpointConfig`` for the model URL; the platform token, if any, as the platform wants it."""
    from rasa_nlu.utils import EndpointConfig

    if settings.model_url:
        return EndpointConfig(settings.model_url)
    if not settings.platform_host:
        raise ConfigError("nlu-ci serve needs --model-url / NLU_CI_MODEL_URL (e.g. http://nlu-ci-models:8080/models/"
                          "<project>) or RASA_PLATFORM_HOST")
    url = platform_model_url(settings.platform_host, settings.project, settings.platform_tag)
    if not settings.api_token:
        return EndpointConfig(url)
    if settings.platform_auth == "bearer":
        return EndpointConfig(url, headers={"Authorization": f"Bearer {settings.api_token}"})
    return EndpointConfig(url, token=settings.api_token, token_name="api_token")


def _add_ready_route(app_class) -> None:
    if getattr(app_class, "_nlu_ci_ready", False):
        return
    from rasa_nlu.utils import json_to_string

    from nlu_ci.serving import swap

    @app_class.app.route("/ready", methods=["GET"])
    def ready(self, request):
        request.setHeader("Content-Type", "application/json")
        project = self.data_router.project_store.get("default")
        model = swap.serving_model(project) if project is not None else None
        request.setResponseCode(200 if model else 503)
        return json_to_string({"ready": bool(model), "model": model})

    app_class._nlu_ci_ready = True


def data_router(settings, metrics, workdir: str):
    """rasa_nlu's ``DataRouter`` pulling from the model URL (first pull done), with nlu-ci's swap and locks.
    The lean server (``lean_app``) answers with the same object, so both servers give the same answers."""
    from rasa_nlu.data_router import DataRouter

    from nlu_ci.serving import swap, threadsafe

    threadsafe.apply()  # rasa_nlu's CRFEntityExtractor under concurrent requests (both swap modes)
    if settings.swap == "atomic":
        swap.apply(metrics, require_metadata=bool(settings.model_url))  # serve-models' zips carry nlu_ci.json
    endpoint = endpoint_config(settings)
    return DataRouter(workdir, model_server=endpoint, wait_time_between_pulls=settings.pull_interval)


def build(settings, workdir: str | None = None):
    """rasa_nlu's ``RasaNLU`` app over a ``DataRouter`` that pulls from the model URL (first pull done)."""
    from rasa_nlu.server import RasaNLU

    from nlu_ci.serving import parse_metrics

    metrics = parse_metrics.ServingMetrics(settings.project, settings.fallback_threshold)
    workdir = workdir or tempfile.mkdtemp(prefix="nlu-ci-serve-")  # rasa_nlu's --path: nothing is kept there
    router = data_router(settings, metrics, workdir)
    _add_ready_route(RasaNLU)
    rasa = RasaNLU(router, settings.log_level, None, 1, settings.rasa_nlu_token)
    rasa.nlu_ci_metrics = metrics
    return rasa


def run(settings) -> str:
    """Serve until SIGTERM/SIGINT; returns the address it served on."""
    from twisted.internet import reactor
    from twisted.internet.error import CannotListenError
    from twisted.python import log as twisted_log

    from nlu_ci.serving import query_log, serve_app

    twisted_log.PythonLoggingObserver(loggerName="twisted").start()  # through our logging: redacted, stderr
    logging.getLogger("twisted").setLevel(logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING)
    answers = query_log.from_settings(settings)  # None unless --query-log
    workdir = tempfile.mkdtemp(prefix="nlu-ci-serve-")
    rasa = build(settings, workdir)
    port = settings.port or DEFAULT_PORT
    try:
        reactor.listenTCP(port, serve_app.site(settings, rasa, answers), interface=settings.host)
    except CannotListenError as err:
        raise ConfigError(f"--host/--port: cannot listen on {settings.host}:{port}: {err.socketError}") from None
    address = f"http://{settings.host}:{port}"
    log.info("rasa_nlu %s serving on %s, pulling %s every %gs", _rasa_version(), address,
             _safe_url(settings), settings.pull_interval)
    try:
        reactor.run()
    finally:
        if answers is not None:
            answers.close()
        remove_pulled(rasa.data_router, workdir)
    return address


def remove_pulled(router, workdir: str) -> None:
    """The pulled models' folders and rasa_nlu's --path folder, when the server stops."""
    for project in router.project_store.values():
        for folder in getattr(project, "_nlu_ci_dirs", []):
            shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)


def _safe_url(settings) -> str:
    return settings.model_url or platform_model_url(settings.platform_host, settings.project, settings.platform_tag)


def _rasa_version() -> str:
    from rasa_nlu.version import __version__

    return __version__
