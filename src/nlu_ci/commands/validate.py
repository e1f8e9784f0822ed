"""``nlu-ci validate --data FILE|FOLDER [--test-data FILE] [--strict]``: the data checks, without training.

Exit 0 when nothing fails, 2 when a check found an error (or a warning, with ``--strict`` /
``NLU_CI_STRICT_DATA``) or the data cannot be read."""
from __future__ import annotations

import argparse

from nlu_ci.commands.result import Result
from nlu_ci.errors import EXIT_OK, EXIT_USAGE, ConfigError

NAME = "validate"
HELP = "check training data: conflicts, duplicates, near-duplicate names, repairs (README 'nlu-ci validate')"
SETTINGS = ["output", "log_level", "log_format", "data", "test_data", "max_repair_share", "strict_data"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strict", dest="strict_data", action="store_const", const=True, default=None,
                        help="same as --strict-data: warnings fail (exit 2)")


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.data import checks, dataset, notes_of, stage

    if settings.data is None:
        raise ConfigError("validate: set --data / NLU_CI_DATA")
    data = dataset.load_training_data(settings.data, max_repair_share=settings.max_repair_share)
    test, test_notes = None, None
    if settings.test_data:
        test_data = dataset.load_training_data_for_test(settings.test_data,
                                                        max_repair_share=settings.max_repair_share)
        test = [dataset.example_dict(m) for m in test_data.training_examples if m.get("intent")]
        test_notes = notes_of(test_data)
    notes = notes_of(data)
    findings = checks.run_checks(data, notes, test=test, test_notes=test_notes, hash_split=test is None)
    failed = checks.failing(findings, bool(settings.strict_data))
    out = dict(stage.data_section(notes, test_notes, findings), data=str(settings.data),
               test_data=str(settings.test_data) if settings.test_data else None,
               examples=len(data.training_examples), strict=bool(settings.strict_data), passed=not failed)
    title = (f"nlu-ci validate {settings.data}: {len(data.training_examples)} examples, "
             f"{'FAILED' if failed else 'passed'}{' (strict)' if settings.strict_data else ''}")
    return Result(out, checks.format_text(findings, title), EXIT_USAGE if failed else EXIT_OK)
