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

from nlu_ci.components.tagging import spans_from_tags

Sequence = tuple[list[list[str]], list[str]]  # (features per token, gold tags)


def span_scores(tagger, features: list[list[str]]) -> list[tuple[int, int, str, float]]:
    """Viterbi spans of one sequence with their raw confidence (the smallest token marginal inside)."""
    tagger.set(features)
    tags = tagger.tag()
    return [(first, last, name, min(tagger.marginal(tags[i], i) for i in range(first, last + 1)))
            for first, last, name in spans_from_tags(tags)]


def out_of_fold(sequences: list[Sequence], make_trainer: Callable, folds: int, sample: int,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(raw confidences, correct flags) of the entities k-fold models predict on sequences they did not see.

    At most ``sample`` sequences (a seeded random subset; 0: all) take part; empty arrays when there are
    fewer sequences than folds."""
    import pycrfsuite

    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(sequences))[: sample or len(sequences)]
    if folds < 2 or len(pick) < folds:
        return np.zeros(0), np.zeros(0)
    which = np.arange(len(pick)) % folds
    scores: list[float] = []
    correct: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="nlu-ci-crf-folds-") as tmp:
        for k in range(folds):
            trainer = make_trainer()
            for i in pick[which != k]:
                trainer.append(*sequences[i])
            path = os.path.join(tmp, f"fold{k}.crfsuite")
            trainer.train(path)
            tagger = pycrfsuite.Tagger()
            tagger.open(path)
            try:
                for i in pick[which == k]:
                    features, gold_tags = sequences[i]
                    gold = set(spans_from_tags(gold_tags))
                    for first, last, name, score in span_scores(tagger, features):
                        scores.append(score)
                        correct.append((first, last, name) in gold)
            finally:
                tagger.close()
    return np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
