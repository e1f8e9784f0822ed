"""``nlu-ci run``: the nightly job once."""
from __future__ import annotations

import argparse

from nlu_ci import report as reports
from nlu_ci.commands.options import RUN
from nlu_ci.commands.result import Result

NAME = "run"
HELP = "fetch data, train, evaluate against the active model, promote if it passes"
SETTINGS = RUN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci import pipeline

    result = pipeline.run(settings)
    return Result(result, reports.summary(result), int(result["exit_code"]))
