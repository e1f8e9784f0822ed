"""``nlu-ci serve``: rasa_nlu 0.15's HTTP API (``/parse``, ``/status``, ``/version``, ``/ready``, ``/metrics``),
answering with the model it pulls from a model URL, on the lean server (default) or rasa_nlu's own."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import PLATFORM
from nlu_ci.commands.result import Result

NAME = "serve"
HELP = ("serve rasa_nlu's HTTP API (/parse, /status, /version, /ready, /metrics only), pulling the active model from "
        "--model-url; --server lean (default, --workers processes) or rasa (rasa_nlu's own server)")
SETTINGS = ["host", "port", "model_url", "pull_interval", "swap", "server", "workers", "project", "output",
            "log_level", "log_format"] + PLATFORM
SETTINGS += ["max_message_chars", "fallback_threshold", "query_log", "query_log_max_mb", "query_log_max_age_hours",
             "query_log_mask"]  # nlu-ci serve's own (settings.py: "# -- nlu-ci serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(settings, args: argparse.Namespace) -> Result:
    if settings.server == "rasa":
        from nlu_ci.serving import rasa_server as server
    else:
        from nlu_ci.serving import lean_server as server

    address = server.run(settings)
    return Result({"stopped": True, "url": address, "server": settings.server},
                  f"{settings.server} server on {address} stopped")
