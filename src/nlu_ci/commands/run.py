"""``nlu-ci run``: the nightly job once."""
from __future__ import annotations

import argparse

from nlu_ci.commands.options import RUN
from nlu_ci.commands.result import Result
from nlu_ci.report import document

NAME = "run"
HELP = "fetch data, train, evaluate against the active model, promote if it passes"
SETTINGS = RUN


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci import pipeline

    report = pipeline.run(settings)
    return Result(report.to_dict(), document.summary(report), int(report.exit_code))
