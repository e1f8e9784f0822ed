"""Paired statistics for comparing two models evaluated on the same test set.

Everything here is pure numpy/scipy on plain arrays; nothing knows about models or files.

McNemar (exact)
    On per-utterance correctness of two models A (active) and B (candidate) over the same utterances:
    ``b`` = utterances A gets right and B gets wrong (regressions), ``c`` = utterances A gets wrong and
    B gets right (fixes). Under H0 (both models equally accurate) each discordant pair is a fair coin, so
    ``c ~ Binomial(b + c, 1/2)``.

    * two-sided p   = min(1, 2 * P(X <= min(b, c)))  -- identical to statsmodels ``mcnemar(exact=True)``
    * p_better      = P(X >= c)  one-sided, H1: B is more accurate than A  (small when c >> b)
    * p_worse       = P(X >= b)  one-sided, H1: B is less accurate than A  (small when b >> c)

    With no discordant pairs (b + c == 0) every p-value is 1.

Weighted F1
    sklearn's ``f1_score(average="weighted")`` (what rasa_nlu reports): per label F1 = 2 TP / (2 TP + FP +
    FN) = 2 TP / (support + predicted), averaged with the gold support as weight. Labels that are only
    predicted have weight 0. Computed from ``np.bincount`` counts so that thousands of bootstrap
    resamples cost a few vectorised passes, not thousands of sklearn calls.

Paired bootstrap
    Resample utterance indices with replacement (the same indices for both models, so the pairing is
    kept), compute weighted F1 of both models on each resample and take the percentile interval of
    the difference candidate - active. Seeded (``numpy.random.default_rng(seed)``) and drawn in fixed
    chunks, so the result is the same for the same inputs and seed on every machine.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _sps

# Predictions of ``None`` (no intent) become this label, like rasa_nlu's evaluation (it uses "").
NO_LABEL = ""
_CHUNK_ELEMENTS = 2_000_000  # resamples x utterances drawn at once: bounds memory (~16 MB of int64)


@dataclass(frozen=True)
class McNemarResult:
    b: int  # active right, candidate wrong
    c: int  # active wrong, candidate right
    p_value: float  # exact, two-sided
    p_better: float  # exact, one-sided: candidate more accurate
    p_worse: float  # exact, one-sided: candidate less accurate

    @property
    def discordant(self) -> int:
        return self.b + self.c

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar_exact(b: int, c: int) -> McNemarResult:
    """Exact McNemar test from the two discordant counts (see the module docstring)."""
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return McNemarResult(b, c, 1.0, 1.0, 1.0)
    two_sided = min(1.0, 2.0 * float(_sps.binom.cdf(min(b, c), n, 0.5)))
    p_better = float(_sps.binom.sf(c - 1, n, 0.5))  # P(X >= c)
    p_worse = float(_sps.binom.sf(b - 1, n, 0.5))  # P(X >= b)
    return McNemarResult(b, c, two_sided, min(1.0, p_better), min(1.0, p_worse))


def mcnemar_paired(active_correct: Sequence[bool], candidate_correct: Sequence[bool]) -> McNemarResult:
    """Exact McNemar test on per-utterance correctness of the same utterances, in the same order."""
    a = np.asarray(active_correct, dtype=bool)
    k = np.asarray(candidate_correct, dtype=bool)
    if a.shape != k.shape or a.ndim != 1:
        raise ValueError(f"paired correctness arrays differ in shape: {a.shape} vs {k.shape}")
    b = int(np.count_nonzero(a & ~k))
    c = int(np.count_nonzero(~a & k))
    return mcnemar_exact(b, c)


def encode_labels(*label_lists: Sequence[str | None]) -> tuple[list[np.ndarray], list[str]]:
    """Map string labels (``None`` -> ``NO_LABEL``) to shared integer codes 0..K-1."""
    cleaned = [[NO_LABEL if x is None else str(x) for x in labels] for labels in label_lists]
    vocab = sorted({x for labels in cleaned for x in labels})
    index = {label: i for i, label in enumerate(vocab)}
    return [np.fromiter((index[x] for x in labels), dtype=np.int64, count=len(labels)) for labels in cleaned], vocab


def _weighted_f1_from_counts(support: np.ndarray, predicted: np.ndarray, tp: np.ndarray, n: int) -> np.ndarray:
    """Weighted F1 along the last axis: sum(support * 2TP / (support + predicted)) / n."""
    denom = support + predicted
    with np.errstate(divide="ignore", invalid="ignore"):
        per_label = np.where(denom > 0, 2.0 * tp / np.where(denom > 0, denom, 1), 0.0)
    return (support * per_label).sum(axis=-1) / n


def weighted_f1_codes(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int | None = None) -> float:
    """Weighted F1 (sklearn ``average="weighted"``) of integer-coded labels."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = y_true.size
    if n == 0:
        return 0.0
    k = int(n_labels if n_labels is not None else max(y_true.max(), y_pred.max()) + 1)
    support = np.bincount(y_true, minlength=k)
    predicted = np.bincount(y_pred, minlength=k)
    tp = np.bincount(y_true[y_true == y_pred], minlength=k)
    return float(_weighted_f1_from_counts(support, predicted, tp, n))


def weighted_f1(y_true: Sequence[str | None], y_pred: Sequence[str | None]) -> float:
    """Weighted F1 of string labels; equals sklearn ``f1_score(y_true, y_pred, average="weighted")``."""
    if len(y_true) != len(y_pred):
        raise ValueError(f"label lists differ in length: {len(y_true)} vs {len(y_pred)}")
    (t, p), vocab = encode_labels(y_true, y_pred)
    return weighted_f1_codes(t, p, len(vocab))


@dataclass(frozen=True)
class BootstrapResult:
    observed: float  # weighted F1 difference candidate - active on the full test set
    low: float  # percentile interval bounds of the difference
    high: float
    confidence: float
    resamples: int
    seed: int
    mean: float  # mean of the resampled differences

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap_f1_diff(
    y_true: Sequence[str | None],
    pred_candidate: Sequence[str | None],
    pred_active: Sequence[str | None],
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Seeded paired bootstrap percentile CI of weighted F1(candidate) - weighted F1(active)."""
    n = len(y_true)
    if not (len(pred_candidate) == len(pred_active) == n):
        raise ValueError(
            f"paired label lists differ in length: gold {n}, candidate {len(pred_candidate)}, "
            f"active {len(pred_active)}"
        )
    if n == 0:
        raise ValueError("cannot bootstrap an empty test set")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    (t, pc, pa), vocab = encode_labels(y_true, pred_candidate, pred_active)
    k = len(vocab)
    observed = weighted_f1_codes(t, pc, k) - weighted_f1_codes(t, pa, k)
    hit_c = (t == pc).astype(np.float64)
    hit_a = (t == pa).astype(np.float64)

    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, _CHUNK_ELEMENTS // n))
    diffs = np.empty(resamples, dtype=np.float64)
    done = 0
    while done < resamples:
        m = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(m, n))
        offsets = (np.arange(m, dtype=np.int64) * k)[:, None]
        size = m * k
        true_codes = (t[idx] + offsets).ravel()
        support = np.bincount(true_codes, minlength=size).reshape(m, k)
        f1 = []
        for pred, hit in ((pc, hit_c), (pa, hit_a)):
            predicted = np.bincount((pred[idx] + offsets).ravel(), minlength=size).reshape(m, k)
            tp = np.bincount(true_codes, weights=hit[idx].ravel(), minlength=size).reshape(m, k)
            f1.append(_weighted_f1_from_counts(support, predicted, tp, n))
        diffs[done:done + m] = f1[0] - f1[1]
        done += m
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return BootstrapResult(float(observed), float(low), float(high), float(confidence), int(resamples),
                           int(seed), float(diffs.mean()))
