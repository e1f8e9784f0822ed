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
SETTINGS = ["models_dir", "host", "port", "zip_cache", "output", "log_level", "log_format"]
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


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.serving import model_server

    port = settings.port or DEFAULT_PORT
    cache = settings.zip_cache or Path(tempfile.gettempdir()) / "nlu-ci-zips"
    try:
        server = model_server.make_server(settings.host, port, settings.models_dir, cache)
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
