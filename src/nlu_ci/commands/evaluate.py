"""``nlu-ci evaluate MODEL --data FILE``: one model's scores on a labelled file."""
from __future__ import annotations

import argparse
from pathlib import Path

from nlu_ci.commands.options import COMMON
from nlu_ci.commands.result import Result
from nlu_ci.compare import load_test_examples, resolve_model
from nlu_ci.evaluation import format_table
from nlu_ci.registry import backends

NAME = "evaluate"
HELP = "evaluate a model (store name or path) on a data file"
SETTINGS = COMMON


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model name in the store, or a path to a model folder")
    parser.add_argument("--data", dest="eval_data", required=True, type=Path, help="test data (Rasa NLU JSON, Markdown or Rasa 2/3 YAML; a file or a folder)")


def main(settings, args: argparse.Namespace) -> Result:
    model = resolve_model(backends.build(settings), args.model, "evaluate")
    test = load_test_examples(args.eval_data)
    result = model.evaluate(test)
    out = dict(result.summary(), model=str(model.path), test_examples=len(test))
    return Result(out, format_table(result, f"{model.path} on {args.eval_data} ({len(test)} examples)"))
