"""LinearIntentClassifier: a rasa_nlu 0.15 intent classifier on sparse word + char n-grams.

Use it by module path in ``nlu_config.yml``::

    pipeline:
    - name: nlu_ci.components.LinearIntentClassifier

It needs no tokenizer or featurizer before it (it featurizes the raw text itself) and provides
``intent`` and ``intent_ranking`` like ``SklearnIntentClassifier``. Model: one-vs-rest linear SVM
(``LinearSVC``) on TF-IDF word and ``char_wb`` n-grams; confidences are a softmax of the decision scores
with a temperature fitted on out-of-fold scores (see ``calibration``), so they sum to 1 over every intent.
Persisted as ``.npz`` arrays + a JSON file (no pickles); ``process_batch`` predicts many messages at once
with results identical to ``process``.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from rasa_nlu.components import Component

import nlu_ci.components.options as options
import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci import cpus
from nlu_ci.components.calibration import DEFAULT_TEMPERATURE, fit_temperature, softmax
from nlu_ci.components.ngrams import NgramFeatures
from nlu_ci.engine import child, memory
from nlu_ci.engine.batch import PlainRanking

log = logging.getLogger(__name__)


class LinearIntentClassifier(Component):
    provides = ["intent", "intent_ranking"]
    requires: list[str] = []
    reads_in_training: tuple[str, ...] = ()   # the texts and intents only (engine.training.drop_unread)
    defaults = {
        "C": 0.5,                     # inverse regularisation of the linear SVM
        "word_ngrams": [1, 2],
        "char_ngrams": [3, 5],        # char_wb n-grams (inside word boundaries); 3-5: bench/intent_options.py
        "min_df": 2,                  # drop n-grams seen in fewer training texts (1 below 8 texts)
        "max_features": None,         # cap per analyzer (None: no cap)
        "calibration_folds": 3,       # k-fold out-of-fold scores for the temperature; 0: no calibration
        "calibration_sample": 4000,   # examples used for those folds (0: all); the temperature is 1 number
        "ranking_length": 10,         # intents in intent_ranking (rasa_nlu's INTENT_RANKING_LENGTH); 0: all
        "max_iter": 2000,
        "tol": 0.1,                   # liblinear's stopping tolerance (0.1: same F1, faster; bench/intent_options.py)
        "dual": True,                 # liblinear's dual solver: scikit-learn's "auto" picks the primal one
                                      # once samples outnumber features (~60k examples), 3-7x slower there
        "random_state": 0,
    }

    def __init__(self, component_config: dict[str, Any] | None = None, *,
                 features: NgramFeatures | None = None, classes: list[str] | None = None,
                 weights: np.ndarray | None = None, intercept: np.ndarray | None = None,
                 temperature: float = DEFAULT_TEMPERATURE) -> None:
        super().__init__(component_config)
        self._check_options(self.component_config)
        self.features = features
        self.classes = classes or []
        self.weights = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        self.intercept = None if intercept is None else np.asarray(intercept, dtype=np.float64)
        self.temperature = float(temperature)

    @staticmethod
    def _check_options(c: dict[str, Any]) -> None:
        """Bad values are a ValueError here (the config file's one-line error), not a crash in training."""
        name = "LinearIntentClassifier"
        options.number(c, name, "C")
        options.whole(c, name, "max_iter", low=1)
        options.whole(c, name, "min_df", low=1)
        options.whole(c, name, "max_features", low=1, optional=True)
        options.whole(c, name, "calibration_folds", low=0, high=100, optional=True)
        options.whole(c, name, "calibration_sample", low=0, optional=True)
        options.whole(c, name, "ranking_length", low=0, optional=True)
        options.whole(c, name, "random_state", low=0, high=2**32 - 1, optional=True)
        options.number(c, name, "tol")
        options.one_of(c, name, "dual", (True, False, "auto"))

    @classmethod
    def required_packages(cls) -> list[str]:
        return ["sklearn", "scipy"]

    @property
    def trained(self) -> bool:
        return self.weights is not None

    # -- training -------------------------------------------------------------------------------
    def _svm(self):
        from sklearn.svm import LinearSVC

        c = self.component_config
        return LinearSVC(C=float(c["C"]), max_iter=int(c["max_iter"]), tol=float(c["tol"]), dual=c["dual"],
                         random_state=c["random_state"])

    @staticmethod
    def _scores(svm, x) -> np.ndarray:
        s = svm.decision_function(x)
        return np.column_stack([-s, s]) if s.ndim == 1 else s

    def _calibration_folds(self, x, y: np.ndarray) -> tuple[list, Callable] | None:
        """The k-fold fits whose decision scores on the examples each did not see fit the temperature:
        (one function per fold, ``combine``); ``combine(results in fold order)`` gives (scores, labels).

        Uses at most ``calibration_sample`` examples (a seeded random subset) and only intents with at
        least k of them there; None when fewer than 2 such intents remain.
        """
        from sklearn.model_selection import StratifiedKFold

        c = self.component_config
        folds = int(c["calibration_folds"] or 0)
        if folds < 2:
            return None
        rng = np.random.default_rng(c["random_state"])
        pick = rng.permutation(len(y))[: int(c["calibration_sample"] or 0) or len(y)]
        counts = np.bincount(y[pick], minlength=len(self.classes))
        pick = np.sort(pick[counts[y[pick]] >= folds])
        kept = np.flatnonzero(counts >= folds)
        if len(kept) < 2:
            return None
        remap = np.full(len(self.classes), -1)
        remap[kept] = np.arange(len(kept))
        xs, ys = x[pick], remap[y[pick]]
        split = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=c["random_state"])
                     .split(np.zeros(len(ys)), ys))

        def fold(train_idx: np.ndarray, held_idx: np.ndarray):
            return lambda: self._scores(self._svm().fit(xs[train_idx], ys[train_idx]), xs[held_idx])

        def combine(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            scores = np.zeros((len(ys), len(kept)))
            for (_, held_idx), part in zip(split, parts, strict=True):
                scores[held_idx] = part
            return scores, ys

        return [fold(t, h) for t, h in split], combine

    def _fit(self, x, y: np.ndarray):
        """(the fitted LinearSVC, the out-of-fold (scores, labels) or None). With more than one worker
        (``cpus.workers``) the calibration folds run in a forked child while the main fit runs here (the same
        numbers with any count: every fit is seeded). The child forks before the main fit, so it shares a
        process without liblinear's copy of the matrix or the fitted model (the job's peak at 100k examples),
        and the main fit's coefficients never cross a pipe (~80 MB at 100k examples, twice while unpickled)."""
        plan = self._calibration_folds(x, y)
        if plan is None:
            return self._svm().fit(x, y), None
        folds, combine = plan
        svm, parts = child.beside(lambda: self._svm().fit(x, y), folds, cpus.workers(), "intent calibration fold")
        return svm, combine(parts)

    def train(self, training_data, cfg=None, **kwargs: Any) -> None:
        examples = training_data.intent_examples
        labels = [e.get("intent") for e in examples]
        self.classes = sorted(set(labels))
        if len(self.classes) < 2:
            log.warning("LinearIntentClassifier needs at least 2 intents, got %d: not trained", len(self.classes))
            self.weights = self.intercept = None
            return
        texts = [e.text for e in examples]
        c = self.component_config
        features = NgramFeatures(word_ngrams=tuple(c["word_ngrams"]), char_ngrams=tuple(c["char_ngrams"]),
                                 min_df=int(c["min_df"]), max_features=c["max_features"])
        # the vocabularies are learnt in a forked child: its counting leaves ~140 MB of freed but fragmented
        # heap at 100k examples, which would stay under the matrix and the fit; only the vocabularies return
        self.features = child.call(lambda: features.fit(texts), "n-gram vocabulary")
        x = self.features.transform(texts)
        memory.trim()   # the chunks' arrays, freed in the middle of the heap, before the fit allocates
        index = {name: i for i, name in enumerate(self.classes)}
        y = np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))
        svm, oof = self._fit(x, y)
        del x
        memory.trim()   # the matrix and what the fit left: later steps (evaluation) start from a trimmed heap
        coef, intercept = svm.coef_, svm.intercept_
        if coef.shape[0] == 1:          # binary: LinearSVC keeps one hyperplane; score both sides
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        self.weights = np.ascontiguousarray(coef.T, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.temperature = fit_temperature(*oof) if oof is not None else DEFAULT_TEMPERATURE
        log.info("LinearIntentClassifier: %d intents, %d features, temperature %.4f",
                 len(self.classes), self.features.n_features, self.temperature)

    # -- prediction -----------------------------------------------------------------------------
    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(self.classes)) confidences; each row sums to 1."""
        # one text (a parse per message): the per-text featurizer and scipy's kernel, no sparse matrix made
        if len(texts) == 1:
            scores = self.features.dot_one(texts[0], self.weights)
        else:
            scores = np.asarray(self.features.transform(texts) @ self.weights)
        return softmax(scores + self.intercept, self.temperature)

    def process_batch(self, messages: list, **kwargs: Any) -> None:
        if not messages:
            return
        if not self.trained:
            for message in messages:
                message.set("intent", None, add_to_output=True)
                message.set("intent_ranking", [], add_to_output=True)
            return
        probabilities = self.predict_proba([m.text for m in messages])
        length = int(self.component_config["ranking_length"] or 0) or len(self.classes)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :length]
        classes = self.classes
        confidences = np.take_along_axis(probabilities, order, axis=1).tolist()
        for message, ranked, row in zip(messages, order.tolist(), confidences, strict=True):
            ranking = PlainRanking([{"name": classes[i], "confidence": c} for i, c in zip(ranked, row, strict=True)])
            message.set("intent", dict(ranking[0]), add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)

    def process(self, message, **kwargs: Any) -> None:
        self.process_batch([message], **kwargs)

    # -- persistence (rasa_nlu: persist returns the metadata that load receives) -------------------
    def persist(self, file_name: str, model_dir: str) -> dict[str, Any] | None:
        if not self.trained:
            return {"file": None, "state_file": None}
        meta, arrays = self.features.state()
        state = {"format": 1, "classes": self.classes, "temperature": self.temperature, "features": meta}
        arrays_name, state_name = file_name + ".npz", file_name + ".json"
        np.savez(os.path.join(model_dir, arrays_name), weights=self.weights, intercept=self.intercept, **arrays)
        with open(os.path.join(model_dir, state_name), "w", encoding="utf-8") as fh:
            json.dump(state, fh, ensure_ascii=False)
        return {"file": arrays_name, "state_file": state_name}

    @classmethod
    def load(cls, meta: dict[str, Any], model_dir: str | None = None, model_metadata=None,
             cached_component=None, **kwargs: Any) -> LinearIntentClassifier:
        if not meta.get("file") or not meta.get("state_file"):
            return cls(meta)
        with open(os.path.join(model_dir, meta["state_file"]), encoding="utf-8") as fh:
            state = json.load(fh)
        with np.load(os.path.join(model_dir, meta["file"]), allow_pickle=False) as arrays:
            arrays = {k: arrays[k] for k in arrays.files}
        return cls(meta, features=NgramFeatures.from_state(state["features"], arrays), classes=state["classes"],
                   weights=arrays["weights"], intercept=arrays["intercept"], temperature=state["temperature"])
