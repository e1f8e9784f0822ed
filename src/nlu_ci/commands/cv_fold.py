"""``nlu-ci cv-fold --index N``: one task of the cv config search (one config on one fold), as an index of the
Kubernetes Indexed Job of k8s/components/parallel-search runs it (``--index`` defaults to the pod's
``JOB_COMPLETION_INDEX``). Reads the data as ``run`` does (git or ``--data``; never the model store), splits
it with the same salt, trains config ``N // K`` on the folds other than ``N % K`` and evaluates on that one.
The result is one JSON object on stdout (``--json``) and in ``--cv-result-file`` (the pod's
``terminationMessagePath``, read back by the CronJob's pod: ``search/indexed.py``)."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from nlu_ci.commands.options import DATA, DATA_GIT
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError, RuntimeFailure

NAME = "cv-fold"
HELP = "one (config, fold) of the cv config search: an index of the parallel-search Indexed Job"
SETTINGS = ["output", "log_level", "log_format", "configs", "cv_folds", "cv_result_file", "max_intents",
            *DATA, *DATA_GIT]
MESSAGE_LIMIT = 4096  # bytes: the kubelet keeps at most this of a termination message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=int, default=None,
                        help="task index: config * K + fold [env JOB_COMPLETION_INDEX, set by an Indexed Job]")


def _index(args, environ) -> int:
    if args.index is not None:
        return args.index
    raw = environ.get("JOB_COMPLETION_INDEX")
    if raw is None or not raw.strip().isdigit():
        raise ConfigError(f"cv-fold: --index or JOB_COMPLETION_INDEX (a whole number) is required, got {raw!r}")
    return int(raw)


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.data import dataset, git_source
    from nlu_ci.job.search import cv
    from nlu_ci.pipeline import read_configs, split_data

    if not settings.cv_folds:
        raise ConfigError("cv-fold: set --cv-folds / NLU_CI_CV_FOLDS (K >= 2)")
    index = _index(args, os.environ)
    configs = read_configs(settings)
    cv.task_of(index, settings.cv_folds, len(configs))  # an index outside the job: one line before any work
    with tempfile.TemporaryDirectory(prefix="nlu-ci-cv-") as tmp:
        source = git_source.from_settings(settings)
        if source is not None:
            data_path = source.fetch(Path(tmp)).path
        elif settings.data is not None:
            data_path = settings.data
        else:
            raise ConfigError("cv-fold: no training data: set --data / NLU_CI_DATA or --data-git-url")
        data = dataset.load_training_data(data_path, max_repair_share=settings.max_repair_share)
        split = split_data(settings, data, data_path)
        result = cv.run_task(configs[index // settings.cv_folds], split.train, settings.cv_folds,
                             settings.split_salt, index, Path(tmp), len(configs))
    message = json.dumps(result, sort_keys=True, separators=(",", ":"))
    if len(message.encode()) >= MESSAGE_LIMIT:
        raise RuntimeFailure(f"cv-fold: the result is {len(message.encode())} bytes, over the termination "
                             f"message limit of {MESSAGE_LIMIT}")
    if settings.cv_result_file:
        try:
            Path(settings.cv_result_file).write_text(message, encoding="utf-8")
        except OSError as err:
            raise RuntimeFailure(f"{settings.cv_result_file}: cannot write the cv result: {err.strerror}") from None
    text = (f"nlu-ci cv-fold {index}: config {result['config']} fold {result['fold']}: intent F1 "
            f"{result['intent_f1']:.4f} on {result['test_examples']} examples ({result['seconds']:.1f} s)")
    return Result(result, text)
