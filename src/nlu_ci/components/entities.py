"""LeanCRFEntityExtractor: a rasa_nlu 0.15 entity extractor, a linear-chain CRF with lean settings.

Use it by module path after a tokenizer in ``nlu_config.yml``::

    pipeline:
    - name: tokenizer_whitespace
    - name: nlu_ci.components.LeanCRFEntityExtractor

Same model family as rasa_nlu's ``CRFEntityExtractor`` (crfsuite), trained much faster by
(1) IO tags instead of BILOU (crfsuite's cost grows with labels squared; on HWU64 IO has 55 labels, BIO
105: the fit 4.8 s against 13.1 s, entity F1 0.716 against 0.719; two adjacent entities of one type
read back as one; ``tagging: BIO`` keeps them apart),
(2) only observed label transitions, (3) passive-aggressive updates for a few epochs instead of
50 L-BFGS iterations, and (4) a small feature set (word, affixes, shape, +-2 words, regex matches).
Decoding is Viterbi. An entity's raw score is the smallest token marginal inside it; with the default
``pa`` trainer those marginals are flat (0.1-0.2 on correct entities), so the reported confidence is that
score calibrated into the probability that the entity is right (span and type): a Platt (or isotonic)
mapping fitted on entities that k-fold models predicted on training examples they did not see
(``entity_folds``, ``calibration.ScoreCalibrator``), persisted with the model. The crfsuite model file is
persisted as is (no pickles).
"""
from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from typing import Any

from rasa_nlu.extractors import EntityExtractor

import nlu_ci.components.options as options
import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci import cpus
from nlu_ci.components.calibration import CALIBRATIONS, ScoreCalibrator
from nlu_ci.components.entity_folds import fold_pick, fold_scores, fold_tasks, span_scores
from nlu_ci.components.tagging import SCHEMES, seed_crfsuite, tags_from_entities
from nlu_ci.engine import child, memory
from nlu_ci.engine.regex_batch import SharedMarks
from nlu_ci.engine.training import FINISHES_LATER

log = logging.getLogger(__name__)


def _word_entry(text: str, window: int) -> tuple[list[str], list[str]]:
    """(a token's own attribute strings, its strings as a neighbour: ``-1=w``, ``+1=w``, ``-2=w``, ...)."""
    w = text.lower()
    own = ["b", "w=" + w, "p3=" + w[:3], "s3=" + w[-3:], "s2=" + w[-2:]]
    if text.isdigit():
        own.append("digit")
    elif not text.isalpha() and any(ch.isdigit() for ch in text):  # letters are never digits: skip the scan
        own.append("hasdigit")
    if text.istitle():
        own.append("title")
    elif text.isupper():
        own.append("upper")
    neighbour = []
    for d in range(1, window + 1):
        neighbour += (f"-{d}=" + w, f"+{d}=" + w)
    return own, neighbour


FEATURE_CACHE_SIZE = 20000   # distinct token texts a prediction cache holds before it starts afresh


def token_features(tokens: list, window: int = 2, cache: dict | None = None,
                   shared: dict | None = None) -> list[list[str]]:
    """crfsuite attribute strings for each token (lower-cased word, affixes, shape, neighbours, regexes).

    ``cache``: a dict kept across calls with one ``window`` (token text -> its strings, made once per distinct
    text; the same lists as without it, in the same order). Words repeat: HWU64's 7,199 test tokens are 1,403
    texts. ``shared``: a dict kept across the calls of one batch (the regex strings of each read-only
    ``SharedMarks``, made once per batch rather than once per text: HWU64's marks have 67 names each)."""
    if cache is None:
        cache = {}
    entries = []
    for token in tokens:
        entry = cache.get(token.text)
        if entry is None:
            entry = cache[token.text] = _word_entry(token.text, window)
        entries.append(entry)
    n = len(tokens)
    columns = []   # per neighbour offset, left then right: that string for every token
    for d in range(1, window + 1):
        edge = min(d, n)
        columns.append([f"-{d}=<s>"] * edge + [e[1][2 * d - 2] for e in entries[: max(n - d, 0)]])
        columns.append([e[1][2 * d - 1] for e in entries[d:]] + [f"+{d}=</s>"] * edge)
    out = []
    matched_names: dict[int, list[str]] = {}   # id(marks) -> its "re=" strings (tokens share marks dicts:
    for token, (own, _), around in zip(tokens, entries, zip(*columns, strict=True) if columns else [()] * n, strict=True):
        marks = token.get("pattern")           # engine.regex_batch.SharedMarks; alive all through this call)
        if not marks:
            out.append([*own, *around])
            continue
        if shared is not None and type(marks) is SharedMarks:   # read-only: the same strings all through a batch
            hit = shared.get(id(marks))         # (the marks are held with them, so their id stays theirs)
            if hit is None:
                hit = shared[id(marks)] = (marks, ["re=" + name for name, matched in marks.items() if matched])
            names = hit[1]
        else:   # training, or a plain dict (which may change between calls): as before, per call
            names = matched_names.get(id(marks))
            if names is None:
                names = matched_names[id(marks)] = ["re=" + name for name, matched in marks.items() if matched]
        out.append([*own, *around, *names])
    return out


ALGORITHMS = ("pa", "ap", "arow", "lbfgs", "l2sgd")  # crfsuite's trainers


def _fit(trainer, seed: int) -> bytes:
    """The crfsuite model file's bytes after ``trainer.train`` (seeded: ``seed_crfsuite``)."""
    with tempfile.TemporaryDirectory(prefix="nlu-ci-crf-") as tmp:
        path = os.path.join(tmp, "model.crfsuite")
        seed_crfsuite(seed)
        trainer.train(path)
        with open(path, "rb") as fh:
            return fh.read()


class LeanCRFEntityExtractor(EntityExtractor):
    provides = ["entities"]
    requires = ["tokens"]
    reads_in_training = ("tokens",)   # and their regex pattern marks (engine.training.drop_unread)
    defaults = {
        "tagging": "IO",              # IO, BIO or BILOU (IO: ~half BIO's labels, ~2.7x faster fit;
                                      # adjacent entities of one type merge)
        "algorithm": "pa",            # crfsuite trainer: pa, ap, arow, lbfgs, l2sgd
        "max_iterations": 10,
        "window": 2,                  # neighbouring words on each side used as features
        "c": None,                    # regularisation (pa/arow: 'c', lbfgs/l2sgd: 'c2'); None: crfsuite's default
        "calibration": "platt",       # confidences: platt, isotonic, or none (the raw smallest marginal)
        "calibration_folds": 3,       # k-fold out-of-fold entities the calibration is fitted on
        "calibration_sample": 4000,   # training examples used for those folds (0: all)
        "random_state": 0,
        "overlap_max_examples": 25000,  # up to this many training examples (0: never) the CRF fits run beside
                                      # the intent fit: 2 CPUs busy, but both fits' memory at once (at 100k
                                      # 1,114 MB against 792, 47-49 s against 52-59; docs/bench/memory.md)
    }

    def __init__(self, component_config: dict[str, Any] | None = None, model: bytes | None = None,
                 calibrator: ScoreCalibrator | None = None) -> None:
        super().__init__(component_config)
        c, name = self.component_config, "LeanCRFEntityExtractor"
        options.choice(c, name, "tagging", SCHEMES)
        options.choice(c, name, "calibration", CALIBRATIONS)
        options.choice(c, name, "algorithm", ALGORITHMS)
        options.whole(c, name, "max_iterations", low=1)
        options.whole(c, name, "window", low=0, high=10)
        options.number(c, name, "c", optional=True, strict=False)
        options.whole(c, name, "overlap_max_examples", low=0)
        self.model = model
        self.calibrator = calibrator or ScoreCalibrator("none")
        self._local = threading.local()     # a crfsuite Tagger is not thread-safe: one per thread
        self._training: child.Started | None = None   # fits still running after train (finish_training)

    @classmethod
    def required_packages(cls) -> list[str]:
        return ["pycrfsuite"]

    # -- training -------------------------------------------------------------------------------
    def train(self, training_data, cfg=None, **kwargs: Any) -> None:
        """With more than one worker (``cpus.workers``) the main CRF and its calibration folds run side by side,
        each in a forked process (the folds are smaller: on 2 CPUs they share the second one); every fit is
        seeded, so the model and the calibration are those of the one-by-one order. Under nlu-ci's training
        (``FINISHES_LATER``) and up to ``overlap_max_examples`` examples they are left running while the
        components after this one train; ``finish_training`` takes their results.

        Features are built one sequence at a time and handed to crfsuite at once (it keeps its own compact
        copy): only the sequences the calibration folds use (``calibration_sample``) are kept as Python
        lists. At 100k examples all of them were ~550 MB on top of crfsuite's ~120 MB."""
        if not training_data.entity_examples:
            return
        c = self.component_config
        window, scheme = int(c["window"]), c["tagging"]
        examples = [m for m in training_data.training_examples if m.get("tokens")]
        n_examples = len(examples)
        calibrating = c["calibration"] != "none"
        seed = int(c["random_state"] or 0)
        pick = fold_pick(n_examples, int(c["calibration_sample"] or 0), seed)
        slot = {int(i): j for j, i in enumerate(pick)} if calibrating else {}
        kept: list = [None] * len(slot)
        trainer, skipped = self._trainer(), 0
        cache: dict = {}   # token text -> its attribute strings, for this training only
        for i, example in enumerate(examples):
            features, tags, bad = self._sequence(example, window, scheme, cache)
            skipped += bad
            trainer.append(features, tags)
            j = slot.get(i)
            if j is not None:
                kept[j] = example
        del examples, slot
        # the folds' sequences made again here, not kept from the loop: 4 % of the loop's strings kept alive
        # all through it pinned most of the heap's pages they were made on (~300 MB at 100k examples)
        picked = [self._sequence(example, window, scheme, cache)[:2] for example in kept]
        del kept, cache
        if skipped:
            log.warning("LeanCRFEntityExtractor: %d entity annotations do not start and end on token "
                        "boundaries and were left out of training", skipped)
        folds = fold_tasks(picked, self._trainer, int(c["calibration_folds"] or 0), seed) if calibrating else []
        workers = cpus.workers()
        if folds and workers > 1:
            fits = functools.partial(child.parallel, [functools.partial(_fit, trainer, seed), *folds], workers,
                                     "entity training")
            del trainer, picked, folds
            if kwargs.get(FINISHES_LATER) and n_examples <= int(c["overlap_max_examples"] or 0):
                # the fits go on in a forked child while the components after this one train (the pipeline
                # calls finish_training when they are done): on 2 CPUs the intent fit runs beside the CRF's
                self._training = child.start(fits, "entity training")
                results = None
            else:
                results = fits()
            del fits       # crfsuite's copy of the data, freed and trimmed: its heap would otherwise stay
            memory.trim()  # under the intent fit
            if results is not None:
                self._trained(results)
            return
        model = _fit(trainer, seed)
        del trainer  # crfsuite's copy of the data, before the calibration folds fork
        memory.trim()
        self._trained([model, *child.parallel(folds, workers, "entity calibration fold")])

    def finish_training(self) -> None:
        """Wait for the fits ``train`` left running (``engine.training.train_pipeline`` calls this)."""
        started, self._training = self._training, None
        if started is not None:
            self._trained(started.result())

    def stop_training(self) -> None:
        """Kill the fits ``train`` left running (training failed or was stopped)."""
        started, self._training = self._training, None
        if started is not None:
            started.stop()

    def _sequence(self, example, window: int, scheme: str,
                  cache: dict | None = None) -> tuple[list[list[str]], list[str], int]:
        """(token features, tags, annotations left out) of one training example."""
        (message,) = self.filter_trainable_entities([example])  # one at a time: no copy of every message
        tokens = message.get("tokens")
        tags, bad = tags_from_entities(tokens, message.get("entities", []), scheme)
        return token_features(tokens, window, cache), tags, bad

    def _trained(self, results: list) -> None:
        """The fits' results: the model file's bytes, then each calibration fold's (scores, correct)."""
        self.model, parts = results[0], results[1:]
        self._local = threading.local()
        self.calibrator = self._calibrator(fold_scores(parts)) if parts else ScoreCalibrator("none")

    def _trainer(self):
        import pycrfsuite

        c = self.component_config
        trainer = pycrfsuite.Trainer(algorithm=c["algorithm"], verbose=False)
        params = {"max_iterations": int(c["max_iterations"])}
        if c.get("c") is not None:
            params["c2" if c["algorithm"] in ("lbfgs", "l2sgd") else "c"] = float(c["c"])
        trainer.set_params(params)
        return trainer

    def _calibrator(self, out_of_fold: tuple) -> ScoreCalibrator:
        """Fitted on the calibration folds' (raw confidences, correct flags)."""
        scores, correct = out_of_fold
        if scores.size < 10:
            log.info("LeanCRFEntityExtractor: %d out-of-fold entities: too few to calibrate", scores.size)
            return ScoreCalibrator("none")
        calibrator = ScoreCalibrator.fit(self.component_config["calibration"], scores, correct)
        log.info("LeanCRFEntityExtractor: %s calibration on %d out-of-fold entities (%.0f%% correct)",
                 calibrator.method, scores.size, 100 * correct.mean())
        return calibrator

    # -- prediction -----------------------------------------------------------------------------
    def _get_tagger(self):
        tagger = getattr(self._local, "tagger", None)
        if tagger is None and self.model:
            import pycrfsuite

            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self.model)
            self._local.tagger = tagger
        return tagger

    def _features_cache(self) -> dict:
        """This thread's token text -> attribute strings (``token_features``), emptied when it grows past
        ``FEATURE_CACHE_SIZE``: a server sees unbounded distinct words."""
        cache = getattr(self._local, "features", None)
        if cache is None or len(cache) > FEATURE_CACHE_SIZE:
            cache = self._local.features = {}
        return cache

    def _spans(self, messages: list) -> list[list[tuple[int, int, str, float]]]:
        """Each message's Viterbi spans with raw scores ([] without tokens or a model)."""
        tagger = self._get_tagger()
        if tagger is None:
            return [[] for _ in messages]
        window, cache, shared = int(self.component_config["window"]), self._features_cache(), {}
        return [span_scores(tagger, token_features(tokens, window, cache, shared)) if tokens else []
                for tokens in (message.get("tokens") or [] for message in messages)]

    def extract_batch(self, messages: list) -> list[list[dict[str, Any]]]:
        """Each message's entities: tagged one sequence at a time, the confidences calibrated all at once."""
        spans = self._spans(messages)
        scores = [score for found in spans for *_, score in found]
        confidences = iter(self.calibrator(scores).tolist() if scores else [])
        out = []
        for message, found in zip(messages, spans, strict=True):
            tokens, entities = message.get("tokens"), []
            for first, last, name, _score in found:
                start, end = tokens[first].offset, tokens[last].end
                entities.append({"start": start, "end": end, "value": message.text[start:end],
                                 "entity": name, "confidence": next(confidences)})
            out.append(entities)
        return out

    def extract_entities(self, message) -> list[dict[str, Any]]:
        return self.extract_batch([message])[0]

    def process(self, message, **kwargs: Any) -> None:
        self.process_batch([message], **kwargs)

    def process_batch(self, messages: list, **kwargs: Any) -> None:
        for message, extracted in zip(messages, self.extract_batch(messages), strict=True):
            message.set("entities", message.get("entities", []) + self.add_extractor_name(extracted),
                        add_to_output=True)

    # -- persistence ----------------------------------------------------------------------------
    def persist(self, file_name: str, model_dir: str) -> dict[str, Any] | None:
        if not self.model:
            return {"file": None}
        name = file_name + ".crfsuite"
        with open(os.path.join(model_dir, name), "wb") as fh:
            fh.write(self.model)
        return {"file": name, "calibrator": self.calibrator.to_dict()}

    @classmethod
    def load(cls, meta: dict[str, Any], model_dir: str | None = None, model_metadata=None,
             cached_component=None, **kwargs: Any) -> LeanCRFEntityExtractor:
        if not meta.get("file"):
            return cls(meta)
        with open(os.path.join(model_dir, meta["file"]), "rb") as fh:
            return cls(meta, fh.read(), ScoreCalibrator.from_dict(meta.get("calibrator")))

    def __getstate__(self) -> Any:
        state = super().__getstate__()
        state.pop("_local", None)
        state.pop("_training", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._training = None
