"""``nlu-ci``: a thin command line over the library. Flags default from environment variables.

Exit codes: 0 the command completed (for ``run``: whatever the outcome), 1 runtime failure,
2 bad configuration, data or usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from nlu_ci import __version__, redact
from nlu_ci import settings as settings_mod
from nlu_ci.errors import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, ConfigError, NluCiError

log = logging.getLogger("nlu_ci")

COMMON = ["models_dir", "project", "output", "log_level", "log_format"]
PLATFORM = ["platform_host", "platform_tag", "platform_auth", "http_timeout", "http_retries", "http_backoff"]
RUN = COMMON + PLATFORM + [
    "data", "test_data", "test_fraction", "split_salt", "configs", "policy", "report", "keep_models", "dry_run",
    "evaluation", "eval_timeout", "eval_poll_interval", "pushgateway_url", "pushgateway_username", "metrics_timeout",
    "strict_metrics",
    "kubernetes", "pod_name", "pod_namespace", "pod_uid", "job_name", "job_uid", "lease_name", "lease_duration",
    "restart_deployment",
]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()})


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(redact.RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # rasa_nlu and its dependencies are chatty at INFO
    for noisy in ("rasa_nlu", "urllib3", "matplotlib", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlu-ci", description="Continuous training for Rasa NLU models.")
    parser.add_argument("--version", action="version", version=f"nlu-ci {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="fetch data, train, evaluate against the active model, promote if it passes")
    settings_mod.add_arguments(p, RUN)
    p.add_argument("--json", dest="output", action="store_const", const="json", help="same as --output json")

    p = sub.add_parser("status", help="the active model, its metrics, the last decisions")
    settings_mod.add_arguments(p, COMMON + PLATFORM)
    p.add_argument("--json", dest="output", action="store_const", const="json")
    p.add_argument("--last", type=int, default=5, help="how many history entries to show")

    p = sub.add_parser("rollback", help="re-activate the previous model, or a named one")
    settings_mod.add_arguments(p, COMMON + PLATFORM)
    p.add_argument("model", nargs="?", help="model name (default: the previously active model)")
    p.add_argument("--json", dest="output", action="store_const", const="json")

    p = sub.add_parser("evaluate", help="evaluate a model (store name or path) on a data file")
    settings_mod.add_arguments(p, COMMON)
    p.add_argument("model", help="model name in the store, or a path to a model folder")
    p.add_argument("--data", dest="eval_data", required=True, type=Path, help="test data (Rasa NLU JSON/Markdown)")
    p.add_argument("--json", dest="output", action="store_const", const="json")

    p = sub.add_parser("compare", help="the promotion gate offline: would MODEL_B replace MODEL_A? (docs/policy.md)")
    settings_mod.add_arguments(p, COMMON + ["policy"])
    p.add_argument("model_a", help="the active model: store name or model folder")
    p.add_argument("model_b", help="the candidate model: store name or model folder")
    p.add_argument("--data", dest="eval_data", required=True, type=Path, help="test data (Rasa NLU JSON/Markdown)")
    p.add_argument("--json", dest="output", action="store_const", const="json")

    p = sub.add_parser("train", help="train a model into the store (no evaluation, no promotion)")
    settings_mod.add_arguments(p, COMMON + ["data", "configs"])
    p.add_argument("--json", dest="output", action="store_const", const="json")
    return parser


def emit(output: str, data: Any, text: str) -> None:
    print(redact.redact(json.dumps(data, indent=2, sort_keys=True, default=str)) if output == "json"
          else redact.redact(text))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        settings = settings_mod.from_namespace(args)
    except ConfigError as err:
        print(f"nlu-ci: error: {redact.redact(err)}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, settings.log_format)
    from nlu_ci import commands

    try:
        return getattr(commands, args.command)(settings, args)
    except NluCiError as err:
        log.error("%s", err)
        if settings.output == "json":
            emit("json", {"error": redact.redact(err), "exit_code": err.exit_code}, "")
        return err.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_RUNTIME


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entrypoint()


__all__ = ["main", "build_parser", "EXIT_OK"]
