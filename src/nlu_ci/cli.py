"""``nlu-ci``: a thin command line over the library. Flags default from environment variables.

Exit codes: 0 the command completed (for ``run``: whatever the outcome), 1 runtime failure,
2 bad configuration, data or usage.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from nlu_ci import __version__, cpus, names, redact
from nlu_ci import settings as settings_mod
from nlu_ci.commands import COMMANDS
from nlu_ci.errors import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, ConfigError, NluCiError
from nlu_ci.registry.store import restrict_umask

log = logging.getLogger("nlu_ci")

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
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP)
        settings_mod.add_arguments(p, command.SETTINGS)
        command.add_arguments(p)
        p.add_argument("--json", dest="output", action="store_const", const="json", help="same as --output json")
        p.set_defaults(_command=command)
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
    bad_argument = names.argument_problem(vars(args))  # a path no file system can hold: one line, exit 2
    if bad_argument:
        print(f"nlu-ci: error: {redact.redact(bad_argument)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = settings_mod.from_namespace(args)
    except ConfigError as err:
        print(f"nlu-ci: error: {redact.redact(err)}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, settings.log_format)
    restrict_umask()  # nothing this process writes (models, reports, predictions) is world-readable
    cpus.set_workers(settings.workers)  # parallel fits use the pod's CPU limit unless NLU_CI_WORKERS says
    try:
        result = args._command.main(settings, args)
    except NluCiError as err:
        log.error("%s", err)
        if settings.output == "json":
            emit("json", {"error": redact.redact(err), "exit_code": err.exit_code}, "")
        return err.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_RUNTIME
    emit(settings.output, result.data, result.text)
    return result.exit_code


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entrypoint()


__all__ = ["main", "build_parser", "EXIT_OK"]
