"""nlu_ci.gate.stats against reference implementations (scipy, sklearn)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, binomtest
from sklearn.metrics import f1_score

from nlu_ci.gate import stats

# (b, c) discordant counts, including the edge cases b+c == 0, b == c, one side zero, large n.
TABLES = [(0, 0), (0, 1), (1, 0), (3, 3), (0, 7), (7, 0), (2, 9), (9, 2), (10, 25), (59, 41), (400, 450)]


@pytest.mark.parametrize("b,c", TABLES)
def test_two_sided_matches_the_exact_mcnemar_formula(b, c):
    # statsmodels' mcnemar(exact=True) (statsmodels/stats/contingency_tables.py): the binomial cdf of the
    # smaller discordant count at p = 0.5, doubled and capped at 1 (statsmodels itself is not installed:
    # it pulls pandas into every process that imports scikit-learn, 0.17 s per nlu-ci start)
    ref = min(1.0, 2 * binom.cdf(min(b, c), b + c, 0.5))
    assert stats.mcnemar_exact(b, c).p_value == pytest.approx(float(ref), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("b,c", [t for t in TABLES if sum(t) > 0])
def test_one_sided_matches_scipy_binomtest(b, c):
    r = stats.mcnemar_exact(b, c)
    assert r.p_better == pytest.approx(binomtest(c, b + c, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert r.p_worse == pytest.approx(binomtest(b, b + c, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert r.p_value == pytest.approx(binomtest(c, b + c, 0.5).pvalue, rel=1e-12)


def test_known_values():
    # Textbook: b=1, c=9 (n=10): two-sided exact p = 2 * 11/1024.
    r = stats.mcnemar_exact(1, 9)
    assert r.p_value == pytest.approx(22 / 1024)
    assert r.p_better == pytest.approx(11 / 1024)
    assert r.p_worse == pytest.approx(1 - 1 / 1024)
    assert stats.mcnemar_exact(0, 0).p_value == 1.0
    assert stats.mcnemar_exact(5, 5).p_value == 1.0


def test_paired_counts_b_and_c():
    active = [True, True, False, False, True, False]
    candidate = [True, False, True, True, True, False]
    r = stats.mcnemar_paired(active, candidate)
    assert (r.b, r.c) == (1, 2)
    with pytest.raises(ValueError):
        stats.mcnemar_paired([True], [True, False])
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


@pytest.mark.parametrize("seed", range(8))
def test_weighted_f1_equals_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = np.array(["a", "b", "c", "d", "e", "f"])
    n = int(rng.integers(5, 300))
    y_true = labels[rng.integers(0, 5, n)]  # "f" only ever predicted: weight 0 but counts as FP
    y_pred = np.where(rng.random(n) < 0.6, y_true, labels[rng.integers(0, 6, n)])
    ref = f1_score(y_true, y_pred, average="weighted", zero_division=0)
    assert stats.weighted_f1(list(y_true), list(y_pred)) == pytest.approx(ref, abs=1e-12)


def test_weighted_f1_none_prediction_is_a_miss():
    assert stats.weighted_f1(["a", "b"], ["a", None]) == pytest.approx(
        f1_score(["a", "b"], ["a", ""], average="weighted", zero_division=0))


def _paired_labels(n, acc_c, acc_a, seed=1):
    rng = np.random.default_rng(seed)
    labels = np.array([f"i{j}" for j in range(10)])
    y = labels[rng.integers(0, 10, n)]
    wrong = labels[rng.integers(0, 10, n)]
    pc = np.where(rng.random(n) < acc_c, y, wrong)
    pa = np.where(rng.random(n) < acc_a, y, wrong)
    return list(y), list(pc), list(pa)


def test_bootstrap_contains_observed_and_is_deterministic():
    y, pc, pa = _paired_labels(400, 0.85, 0.8)
    r1 = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=500, seed=3)
    r2 = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=500, seed=3)
    r3 = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=500, seed=4)
    assert r1 == r2
    assert r1 != r3
    assert r1.low <= r1.observed <= r1.high
    assert r1.observed == pytest.approx(
        f1_score(y, pc, average="weighted", zero_division=0) - f1_score(y, pa, average="weighted", zero_division=0))
    assert r1.low < r1.high


def test_bootstrap_resamples_match_sklearn_on_the_same_indices():
    # Re-draw the same indices the implementation draws and check every resampled difference.
    y, pc, pa = _paired_labels(60, 0.7, 0.6, seed=5)
    res = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=50, seed=11)
    idx = np.random.default_rng(11).integers(0, 60, size=(50, 60))
    ya, pca, paa = np.array(y), np.array(pc), np.array(pa)
    diffs = np.array([f1_score(ya[i], pca[i], average="weighted", zero_division=0)
                      - f1_score(ya[i], paa[i], average="weighted", zero_division=0) for i in idx])
    assert res.mean == pytest.approx(diffs.mean(), abs=1e-12)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert (res.low, res.high) == pytest.approx((lo, hi), abs=1e-12)


def test_bootstrap_identical_models_give_zero_interval():
    y, pc, _ = _paired_labels(100, 0.8, 0.8)
    r = stats.paired_bootstrap_f1_diff(y, pc, pc, resamples=200, seed=0)
    assert r.low == r.high == r.observed == 0.0


def test_bootstrap_clearly_better_excludes_zero():
    y, pc, pa = _paired_labels(2000, 0.95, 0.6)
    r = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=300, seed=0)
    assert r.low > 0.2


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError):
        stats.paired_bootstrap_f1_diff(["a"], ["a", "b"], ["a"])
    with pytest.raises(ValueError):
        stats.paired_bootstrap_f1_diff([], [], [])
    with pytest.raises(ValueError):
        stats.paired_bootstrap_f1_diff(["a"], ["a"], ["a"], confidence=1.0)
