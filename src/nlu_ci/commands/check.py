"""``nlu-ci check``: pull-request mode. Train on the branch's data, run the nightly job's gate against the
active model on the same held-out test set, never store or promote; print a Markdown summary.

It is the nightly pipeline with ``dry_run`` forced on (so the comparison is exactly the nightly one) in
pull-request mode: only the output channels whose module says ``PULL_REQUEST = True`` publish (the review page,
the Event on the Job; not Slack, not the metrics: a pull request must not overwrite the nightly job's series),
and ``check`` takes none of the others' flags (``outputs/channels.py``). Exit codes: 0 the gate
passes (or the active model was trained from the same data), 3 the gate fails, 1/2 as for ``run``, and 1
when another run holds the store (nothing was checked).

Judged by the base (``check/judge.py``, docs/check.md): ``--active-model-url`` pulls the active model from
serve-models, ``--base-data`` makes the base branch's held-out examples the test set, ``--base-policy`` (or the
built-in policy) judges; ``data_diff`` lists examples added, removed and relabelled.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path

from nlu_ci.check import judge
from nlu_ci.check import summary as check_summary
from nlu_ci.commands.options import RUN_CORE
from nlu_ci.commands.result import Result
from nlu_ci.errors import EXIT_GATE_FAILED, EXIT_OK, EXIT_RUNTIME, ConfigError
from nlu_ci.outputs import channels
from nlu_ci.registry.store import atomic_write_text
from nlu_ci.report import markdown as summary_markdown

NAME = "check"
HELP = "pull-request mode: train on this data, run the gate against the active model, never promote (exit 3: gate failed)"
# the run's flags, without those of promotion (never happens here) and of the channels that stay silent here
SETTINGS = [name for name in RUN_CORE if name not in ("dry_run", "keep_models", "restart_deployment")] + [
    "active_model_url", "base_data", "base_policy"] + channels.option_names(pull_request=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", metavar="FILE", default=None,
                        help="also write the Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY; appended to when "
                             "FILE is that job summary)")


def exit_code(report: dict) -> int:
    """The report's own exit code when the check failed to run; 1 when the store was locked (nothing was
    checked: a pull request must not pass on that); else 3 when the gate says no."""
    code = int(report.get("exit_code") or 0)
    if code != EXIT_OK:
        return code
    if report.get("outcome") == "locked":
        return EXIT_RUNTIME
    decision = report.get("decision")
    if report.get("outcome") == "dry_run" and decision is not None and not decision.get("promote"):
        return EXIT_GATE_FAILED
    return EXIT_OK


def write_summary(path: Path, markdown: str, append: bool) -> None:
    try:
        if append:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(markdown)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, markdown)
    except OSError as err:
        raise ConfigError(f"--summary {path}: cannot write: {err.strerror or err}") from None


def main(settings, args: argparse.Namespace) -> Result:
    import os

    from nlu_ci import pipeline

    settings = dataclasses.replace(settings, dry_run=True, accept_relabels=None)  # never stores or promotes (so never restarts)
    report = judge.run(settings, functools.partial(pipeline.run, pull_request=True))  # base data, base policy, pulled model, data diff (check/judge.py)
    report.setdefault("check", {})["exit_code"] = exit_code(report)
    markdown = summary_markdown.render(report) + check_summary.render(report)
    if args.summary:
        target = Path(args.summary)
        step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
        write_summary(target, markdown, append=bool(step_summary) and target == Path(step_summary))
    return Result(report.to_dict(), markdown.rstrip("\n"), report.sections["check"]["exit_code"])
