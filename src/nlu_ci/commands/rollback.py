"""``nlu-ci rollback [MODEL]``: serve the previous (or a named) model again."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import COMMON, PLATFORM
from nlu_ci.commands.result import Result
from nlu_ci.registry import backends

NAME = "rollback"
HELP = "re-activate the previous model, or a named one"
SETTINGS = COMMON + PLATFORM


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", help="model name (default: the previously active model)")


def main(settings, args: argparse.Namespace) -> Result:
    registry = backends.build(settings)
    registry.store.ensure()
    with registry.lock():
        target, previous = registry.rollback(args.model)
    changed = target != previous
    data = {"active": target, "previous": previous, "changed": changed}
    if not changed:
        return Result(data, f"{target} is already {registry.serving}")
    return Result(data, f"rolled back: {target} is {registry.serving} (was {previous or 'none'})")
