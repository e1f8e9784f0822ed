"""``nlu-ci serve-models``: serve each project's ACTIVE model to rasa_nlu servers (read-only, until SIGTERM)."""
from __future__ import annotations

import argparse
import logging
import signal
import tempfile
import threading
from pathlib import Path

from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError

NAME = "serve-models"
HELP = "serve each project's active model over HTTP in rasa_nlu's model-server protocol (GET /models/<project>)"
SETTINGS = ["models_dir", "host", "port", "zip_cache", "model_server_max_connections", "model_server_head_timeout",
            "model_server_io_timeout", "output", "log_level", "log_format"]
MAX_CONNECTIONS = 10_000
DEFAULT_PORT = 8080

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def stop_on_signals(stop) -> None:
    """Call ``stop()`` (from another thread) on SIGTERM or SIGINT: Kubernetes stops a pod with SIGTERM."""
    def handler(signum, frame):
        log.info("received %s: stopping", signal.Signals(signum).name)
        threading.Thread(target=stop, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, handler)


def server_limits(settings):
    """The connection bounds from the settings (ConfigError for values that make no sense), with enough file
    descriptors for them: the soft limit is raised towards the hard one if needed (a connection is one fd)."""
    from nlu_ci.serving.bounded import Limits, ensure_file_limit

    n = settings.model_server_max_connections
    if not 1 <= n <= MAX_CONNECTIONS:
        raise ConfigError(f"--model-server-max-connections / NLU_CI_MODEL_SERVER_MAX_CONNECTIONS: {n} is not "
                          f"between 1 and {MAX_CONNECTIONS}")
    for name in ("model_server_head_timeout", "model_server_io_timeout"):
        if not 0 < getattr(settings, name) <= 3600:
            raise ConfigError(f"--{name.replace('_', '-')} / NLU_CI_{name.upper()}: {getattr(settings, name)} is not "
                              "between 0 and 3600 seconds")
    problem = ensure_file_limit(n)
    if problem:
        raise ConfigError(f"--model-server-max-connections / NLU_CI_MODEL_SERVER_MAX_CONNECTIONS: {problem}")
    return Limits(n, settings.model_server_head_timeout, settings.model_server_io_timeout)


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.serving import model_server

    port = settings.port or DEFAULT_PORT
    cache = settings.zip_cache or Path(tempfile.gettempdir()) / "nlu-ci-zips"
    limits = server_limits(settings)
    try:
        server = model_server.make_server(settings.host, port, settings.models_dir, cache, limits)
    except OSError as err:
        raise ConfigError(f"--host/--port: cannot listen on {settings.host}:{port}: {err.strerror or err}") from None
    stop_on_signals(server.shutdown)
    log.info("serving the active models of %s on %s/models/<project> (zips cached in %s)",
             settings.models_dir, server.url, cache)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return Result({"stopped": True, "url": server.url}, f"model server on {server.url} stopped")
