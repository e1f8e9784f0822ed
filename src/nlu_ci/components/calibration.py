"""Confidences from linear decision scores: a softmax with one temperature fitted on out-of-fold scores.

Temperature scaling (Guo et al., 2017) keeps the classifier's ranking (the arg-max never changes) and
makes the confidences sum to 1; the temperature is chosen to minimise the negative log-likelihood of
scores the model produced for examples it did not see during training (k-fold cross-validation).
"""
from __future__ import annotations

import numpy as np

DEFAULT_TEMPERATURE = 0.1   # used when there is too little data to cross-validate


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (stable; every row sums to 1)."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def negative_log_likelihood(scores: np.ndarray, y: np.ndarray, temperature: float) -> float:
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def fit_temperature(scores: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (1e-3, 10.0)) -> float:
    """The temperature in ``bounds`` that minimises the NLL of labels ``y`` (indices) under ``scores``."""
    from scipy.optimize import minimize_scalar

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda t: negative_log_likelihood(scores, y, float(np.exp(t))),
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE: the support-weighted gap between mean confidence and accuracy over equal-width bins."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if confidence.size == 0:
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(confidence[mask].mean() - correct[mask].mean())
    return float(total / confidence.size)
