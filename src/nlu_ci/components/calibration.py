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


# ---------------------------------------------------------------- one score -> P(correct)

CALIBRATIONS = ("platt", "isotonic", "none")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class ScoreCalibrator:
    """Maps a raw score in [0, 1] (e.g. a CRF marginal) to the probability that the prediction is correct.

    ``platt``: a logistic regression on the score's logit (Platt, 1999; two numbers, monotone, smooth);
    ``isotonic``: a monotone step function (Zadrozny & Elkan, 2002), interpolated; ``none``: the raw score.
    Fitted on out-of-fold predictions (examples the model did not train on); persisted as plain JSON.
    """

    def __init__(self, method: str = "none", params: dict | None = None):
        if method not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {method!r}")
        self.method, self.params = method, dict(params or {})

    @classmethod
    def fit(cls, method: str, scores, correct) -> ScoreCalibrator:
        scores = np.asarray(scores, dtype=np.float64)
        correct = np.asarray(correct, dtype=np.float64)
        if method == "none" or scores.size < 2 or correct.min() == correct.max():
            # one class only: the best constant is the observed rate (the raw score is no evidence)
            if method != "none" and scores.size:
                return cls("platt", {"a": 0.0, "b": float(_logit(np.array([correct.mean()]))[0])})
            return cls("none")
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(scores).reshape(-1, 1), correct)
            return cls("platt", {"a": float(model.coef_[0][0]), "b": float(model.intercept_[0])})
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct)
        return cls("isotonic", {"x": [float(v) for v in model.X_thresholds_],
                                "y": [float(v) for v in model.y_thresholds_]})

    def __call__(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.params["a"] * _logit(scores) + self.params["b"])))
        if self.method == "isotonic":
            return np.interp(scores, self.params["x"], self.params["y"])
        return scores

    def to_dict(self) -> dict:
        return {"method": self.method, **self.params}

    @classmethod
    def from_dict(cls, data: dict | None) -> ScoreCalibrator:
        data = dict(data or {"method": "none"})
        return cls(data.pop("method", "none"), data)
