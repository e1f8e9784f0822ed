"""LeanCRFEntityExtractor: a rasa_nlu 0.15 entity extractor, a linear-chain CRF with lean settings.

Use it by module path after a tokenizer in ``nlu_config.yml``::

    pipeline:
    - name: tokenizer_whitespace
    - name: nlu_ci.components.LeanCRFEntityExtractor

Same model family as rasa_nlu's ``CRFEntityExtractor`` (crfsuite), trained much faster by
(1) BIO tags instead of BILOU (half the labels; crfsuite's cost grows with labels squared),
(2) only observed label transitions, (3) passive-aggressive updates for a few epochs instead of
50 L-BFGS iterations, and (4) a small feature set (word, affixes, shape, +-2 words, regex matches).
Decoding is Viterbi; an entity's confidence is the smallest token marginal inside it. The crfsuite
model file is persisted as is (no pickles).
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from typing import Any

from rasa_nlu.extractors import EntityExtractor

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.components.tagging import SCHEMES, spans_from_tags, tags_from_entities

log = logging.getLogger(__name__)


def token_features(tokens: list, window: int = 2) -> list[list[str]]:
    """crfsuite attribute strings for each token (lower-cased word, affixes, shape, neighbours, regexes)."""
    low = [t.text.lower() for t in tokens]
    n = len(tokens)
    out = []
    for i, token in enumerate(tokens):
        w, text = low[i], token.text
        feats = ["b", "w=" + w, "p3=" + w[:3], "s3=" + w[-3:], "s2=" + w[-2:]]
        if text.isdigit():
            feats.append("digit")
        elif any(ch.isdigit() for ch in text):
            feats.append("hasdigit")
        if text.istitle():
            feats.append("title")
        elif text.isupper():
            feats.append("upper")
        for d in range(1, window + 1):
            feats.append(f"-{d}=" + (low[i - d] if i - d >= 0 else "<s>"))
            feats.append(f"+{d}=" + (low[i + d] if i + d < n else "</s>"))
        for name, matched in (token.get("pattern") or {}).items():
            if matched:
                feats.append("re=" + name)
        out.append(feats)
    return out


class LeanCRFEntityExtractor(EntityExtractor):
    provides = ["entities"]
    requires = ["tokens"]
    defaults = {
        "tagging": "BIO",             # BIO or BILOU
        "algorithm": "pa",            # crfsuite trainer: pa, ap, arow, lbfgs, l2sgd
        "max_iterations": 10,
        "window": 2,                  # neighbouring words on each side used as features
        "c": None,                    # regularisation (pa/arow: 'c', lbfgs/l2sgd: 'c2'); None: crfsuite's default
    }

    def __init__(self, component_config: dict[str, Any] | None = None, model: bytes | None = None) -> None:
        super().__init__(component_config)
        if self.component_config["tagging"] not in SCHEMES:
            raise ValueError(f"LeanCRFEntityExtractor: tagging must be one of {SCHEMES}, "
                             f"got {self.component_config['tagging']!r}")
        self.model = model
        self._local = threading.local()     # a crfsuite Tagger is not thread-safe: one per thread

    @classmethod
    def required_packages(cls) -> list[str]:
        return ["pycrfsuite"]

    # -- training -------------------------------------------------------------------------------
    def train(self, training_data, cfg=None, **kwargs: Any) -> None:
        import pycrfsuite

        if not training_data.entity_examples:
            return
        c = self.component_config
        trainer = pycrfsuite.Trainer(algorithm=c["algorithm"], verbose=False)
        params = {"max_iterations": int(c["max_iterations"])}
        if c.get("c") is not None:
            params["c2" if c["algorithm"] in ("lbfgs", "l2sgd") else "c"] = float(c["c"])
        trainer.set_params(params)
        skipped = 0
        for message in self.filter_trainable_entities(training_data.training_examples):
            tokens = message.get("tokens") or []
            if not tokens:
                continue
            tags, bad = tags_from_entities(tokens, message.get("entities", []), c["tagging"])
            skipped += bad
            trainer.append(token_features(tokens, int(c["window"])), tags)
        if skipped:
            log.warning("LeanCRFEntityExtractor: %d entity annotations do not start and end on token "
                        "boundaries and were left out of training", skipped)
        with tempfile.TemporaryDirectory(prefix="nlu-ci-crf-") as tmp:
            path = os.path.join(tmp, "model.crfsuite")
            trainer.train(path)
            with open(path, "rb") as fh:
                self.model = fh.read()
        self._local = threading.local()

    # -- prediction -----------------------------------------------------------------------------
    def _get_tagger(self):
        tagger = getattr(self._local, "tagger", None)
        if tagger is None and self.model:
            import pycrfsuite

            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(self.model)
            self._local.tagger = tagger
        return tagger

    def extract_entities(self, message) -> list[dict[str, Any]]:
        tagger = self._get_tagger()
        tokens = message.get("tokens") or []
        if tagger is None or not tokens:
            return []
        tagger.set(token_features(tokens, int(self.component_config["window"])))
        tags = tagger.tag()
        entities = []
        for first, last, name in spans_from_tags(tags):
            start, end = tokens[first].offset, tokens[last].end
            confidence = min(tagger.marginal(tags[i], i) for i in range(first, last + 1))
            entities.append({"start": start, "end": end, "value": message.text[start:end],
                             "entity": name, "confidence": float(confidence)})
        return entities

    def process(self, message, **kwargs: Any) -> None:
        extracted = self.add_extractor_name(self.extract_entities(message))
        message.set("entities", message.get("entities", []) + extracted, add_to_output=True)

    def process_batch(self, messages: list, **kwargs: Any) -> None:
        for message in messages:
            self.process(message, **kwargs)

    # -- persistence ----------------------------------------------------------------------------
    def persist(self, file_name: str, model_dir: str) -> dict[str, Any] | None:
        if not self.model:
            return {"file": None}
        name = file_name + ".crfsuite"
        with open(os.path.join(model_dir, name), "wb") as fh:
            fh.write(self.model)
        return {"file": name}

    @classmethod
    def load(cls, meta: dict[str, Any], model_dir: str | None = None, model_metadata=None,
             cached_component=None, **kwargs: Any) -> LeanCRFEntityExtractor:
        if not meta.get("file"):
            return cls(meta)
        with open(os.path.join(model_dir, meta["file"]), "rb") as fh:
            return cls(meta, fh.read())

    def __getstate__(self) -> Any:
        state = super().__getstate__()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
