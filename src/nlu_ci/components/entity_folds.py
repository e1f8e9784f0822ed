"""Out-of-fold entity predictions for calibrating ``LeanCRFEntityExtractor``'s confidences.

The training sequences are split into k folds; a CRF trained on k-1 folds tags the held-out one, and each
entity it predicts gives (raw confidence, correct?) — correct when the gold tags have the same token span
and type. These pairs are what ``calibration.ScoreCalibrator`` is fitted on: scores of examples the model
did not see, like the intent classifier's temperature.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np

from nlu_ci import cpus
from nlu_ci.components.tagging import seed_crfsuite, spans_from_tags
from nlu_ci.engine import child

Sequence = tuple[list[list[str]], list[str]]  # (features per token, gold tags)


def span_scores(tagger, features: list[list[str]]) -> list[tuple[int, int, str, float]]:
    """Viterbi spans of one sequence with their raw confidence (the smallest token marginal inside)."""
    tagger.set(features)
    tags = tagger.tag()
    return [(first, last, name, min(tagger.marginal(tags[i], i) for i in range(first, last + 1)))
            for first, last, name in spans_from_tags(tags)]


def fold_pick(n: int, sample: int, seed: int = 0) -> np.ndarray:
    """Indices (into the ``n`` training sequences) of those the calibration folds use, in fold order: at
    most ``sample`` of them (a seeded random subset; 0: all). The caller keeps only these sequences'
    features (``LeanCRFEntityExtractor.train``): at 100k examples the rest would be hundreds of MB."""
    return np.random.default_rng(seed).permutation(n)[: sample or n]


def out_of_fold(sequences: list[Sequence], make_trainer: Callable, folds: int, sample: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(raw confidences, correct flags) of the entities k-fold models predict on sequences they did not see.

    At most ``sample`` sequences (``fold_pick``) take part; empty arrays when there are fewer sequences
    than folds."""
    picked = [sequences[i] for i in fold_pick(len(sequences), sample, seed)]
    return out_of_fold_picked(picked, make_trainer, folds, seed)


def out_of_fold_picked(picked: list[Sequence], make_trainer: Callable, folds: int,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``out_of_fold`` of the sequences ``fold_pick`` chose, given in its order."""
    tasks = fold_tasks(picked, make_trainer, folds, seed)
    # each fold in its own process (the pod's CPUs: ``cpus.workers``); results in fold order, so the
    # calibration is the same whatever the number of workers
    return fold_scores(child.parallel(tasks, cpus.workers(), "entity calibration fold"))


def fold_tasks(picked: list[Sequence], make_trainer: Callable, folds: int,
               seed: int) -> list[Callable[[], tuple[list[float], list[bool]]]]:
    """One function per fold (none when there are fewer sequences than folds, or folds < 2): train on the
    other folds (model file in a temporary folder of its own), return (raw confidences, correct flags) of the held-out fold's
    entities. The caller runs them (``child.parallel``, possibly beside other fits) and hands the results,
    in order, to ``fold_scores``."""
    if folds < 2 or len(picked) < folds:
        return []
    which = np.arange(len(picked)) % folds

    def fold(k: int) -> Callable[[], tuple[list[float], list[bool]]]:
        return lambda: _fold(picked, make_trainer, np.flatnonzero(which != k), np.flatnonzero(which == k),
                             seed + 1 + k)

    return [fold(k) for k in range(folds)]


def fold_scores(parts: list[tuple[list[float], list[bool]]]) -> tuple[np.ndarray, np.ndarray]:
    """The folds' results (in fold order) as (raw confidences, correct flags) arrays."""
    scores = [s for part, _ in parts for s in part]
    correct = [c for _, part in parts for c in part]
    return np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)


def _fold(sequences: list[Sequence], make_trainer: Callable, train: np.ndarray, held: np.ndarray,
          seed: int) -> tuple[list[float], list[bool]]:
    import pycrfsuite

    trainer = make_trainer()
    for i in train:
        trainer.append(*sequences[i])
    with tempfile.TemporaryDirectory(prefix="nlu-ci-crf-fold-") as tmp:
        path = os.path.join(tmp, "fold.crfsuite")
        seed_crfsuite(seed)
        trainer.train(path)
        del trainer
        tagger = pycrfsuite.Tagger()
        tagger.open(path)
    scores: list[float] = []
    correct: list[bool] = []
    try:
        for i in held:
            features, gold_tags = sequences[i]
            gold = set(spans_from_tags(gold_tags))
            for first, last, name, score in span_scores(tagger, features):
                scores.append(score)
                correct.append((first, last, name) in gold)
    finally:
        tagger.close()
    return scores, correct
