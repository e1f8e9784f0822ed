"""``nlu-ci compare MODEL_A MODEL_B --data FILE``: would B replace A? Exit 0 whatever the verdict."""
from __future__ import annotations

import argparse
from pathlib import Path

from nlu_ci import compare as gate_offline
from nlu_ci.commands.options import COMMON
from nlu_ci.commands.result import Result
from nlu_ci.gate.policy import load_policy
from nlu_ci.registry import backends

NAME = "compare"
HELP = "the promotion gate offline: would MODEL_B replace MODEL_A? (docs/policy.md)"
SETTINGS = COMMON + ["policy"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_a", help="the active model: store name or model folder")
    parser.add_argument("model_b", help="the candidate model: store name or model folder")
    parser.add_argument("--data", dest="eval_data", required=True, type=Path, help="test data (Rasa NLU JSON, Markdown or Rasa 2/3 YAML; a file or a folder)")


def main(settings, args: argparse.Namespace) -> Result:
    policy = load_policy(settings.policy)  # a bad policy fails before any model is loaded
    registry = backends.build(settings)
    model_a = gate_offline.resolve_model(registry, args.model_a)
    model_b = gate_offline.resolve_model(registry, args.model_b)
    decision, result_a, result_b = gate_offline.compare(model_a, model_b, args.eval_data, policy)
    return Result(gate_offline.summary(decision, result_a, result_b, model_a.path, model_b.path, args.eval_data),
                  gate_offline.format_text(decision, result_a, result_b, model_a.path, model_b.path, args.eval_data))
