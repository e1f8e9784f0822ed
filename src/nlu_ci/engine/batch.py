"""Batched prediction: run every pipeline component over the whole test set at once.

``predict_batch(interpreter, texts)`` builds one rasa_nlu ``Message`` per text and hands the whole list
to each component in pipeline order, exactly as ``Interpreter.parse`` would hand them one at a time.
A component takes part when it has ``process_batch(messages, **context)`` (nlu-ci's components: one
vectorisation and one matrix product for all texts) or is a stock rasa_nlu component whose ``process``
depends on nothing but its message (looped here). Any other component makes ``predict_batch`` return
None, and the caller falls back to per-message ``parse``. Results are identical either way (tested).
"""
from __future__ import annotations

from collections.abc import Callable

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.engine import regex_batch
from nlu_ci.engine.parse import normalise_parse

# stock rasa_nlu 0.15 components whose process(message) only reads and writes that message
PER_MESSAGE_SAFE = frozenset({
    "WhitespaceTokenizer", "RegexFeaturizer", "CountVectorsFeaturizer", "NGramFeaturizer",
    "EntitySynonymMapper", "CRFEntityExtractor", "SklearnIntentClassifier", "KeywordIntentClassifier",
})

# stock components with a batch version here (same results as their process, fewer Python calls)
STOCK_BATCH = {"RegexFeaturizer": regex_batch.process_batch}


def _batch_step(component) -> Callable | None:
    batch = getattr(component, "process_batch", None)
    if callable(batch):
        return batch
    cls = type(component)
    if cls.__module__.startswith("rasa_nlu.") and cls.__name__ in STOCK_BATCH:
        fast = STOCK_BATCH[cls.__name__]
        return lambda messages, **context: fast(component, messages, **context)
    if cls.__module__.startswith("rasa_nlu.") and cls.__name__ in PER_MESSAGE_SAFE:
        def each(messages, **context):
            for message in messages:
                component.process(message, **context)
        return each
    return None


class PlainRanking(list):
    """An intent ranking whose entries are already exactly ``{"name": str, "confidence": float}``.

    A component that sets one lets the batch path skip converting a full ranking entry by entry (with one
    entry per intent, that conversion cost more than the prediction). It is a list, so every other
    consumer sees an ordinary ranking.
    """


def _normalise(text: str, parsed: dict) -> dict:
    """``normalise_parse``, with a fast path for a ``PlainRanking``."""
    ranking = parsed.get("intent_ranking")
    if type(ranking) is PlainRanking and ranking:
        out = normalise_parse(text, {**parsed, "intent_ranking": []})
        out["intent_ranking"] = list(ranking)   # the message is discarded: its entries can be shared
        return out
    return normalise_parse(text, parsed)


def supports_batch(interpreter) -> bool:
    return all(_batch_step(c) is not None for c in interpreter.pipeline)


def predict_batch(interpreter, texts: list[str]) -> list[dict] | None:
    """Predictions (docs/architecture.md shape) for ``texts`` in order, or None if the pipeline can't batch."""
    from rasa_nlu.training_data import Message

    steps = [_batch_step(c) for c in interpreter.pipeline]
    if any(step is None for step in steps):
        return None
    messages = {i: Message(text, interpreter.default_output_attributes())
                for i, text in enumerate(texts) if text}      # parse() short-cuts empty texts the same way
    batch = list(messages.values())
    for step in steps:
        step(batch, **interpreter.context)
    out = []
    for i, text in enumerate(texts):
        parsed = interpreter.default_output_attributes()
        if i in messages:
            parsed.update(messages[i].as_dict(only_output_properties=True))
        parsed["text"] = text
        out.append(_normalise(text, parsed))
    return out
