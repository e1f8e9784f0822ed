"""``nlu-ci serve``: rasa_nlu's own HTTP server, answering with the model it pulls from a model URL."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import PLATFORM
from nlu_ci.commands.result import Result

NAME = "serve"
HELP = "run rasa_nlu's HTTP server (/parse, /status, /version, /ready, /metrics only), pulling the active model from --model-url"
SETTINGS = ["host", "port", "model_url", "pull_interval", "swap", "project", "output", "log_level",
            "log_format"] + PLATFORM
SETTINGS += ["max_message_chars", "fallback_threshold", "query_log", "query_log_max_mb", "query_log_max_age_hours",
             "query_log_mask"]  # nlu-ci serve's own (settings.py: "# -- nlu-ci serve")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.serving import rasa_server

    address = rasa_server.run(settings)
    return Result({"stopped": True, "url": address}, f"rasa_nlu server on {address} stopped")
