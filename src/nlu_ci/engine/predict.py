"""Load a persisted rasa_nlu model and predict a list of utterances (plain Python results)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.errors import StoreError

log = logging.getLogger(__name__)


def load_model(path: Path | str):
    from rasa_nlu.model import Interpreter

    path = Path(path)
    if not (path / "metadata.json").is_file():
        raise StoreError(f"{path}: not a rasa_nlu model (metadata.json missing)")
    try:
        return Interpreter.load(str(path))
    except Exception as err:
        raise StoreError(f"{path}: cannot load the model: {type(err).__name__}: {err}") from None


def plain(value: Any) -> Any:
    """numpy scalars and friends -> JSON-friendly Python types."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    return value


def normalise_parse(text: str, parsed: dict) -> dict:
    intent = parsed.get("intent") or {}
    return {
        "text": text,
        "intent": plain(intent.get("name")) if intent else None,
        "confidence": float(plain(intent.get("confidence") or 0.0)) if intent else 0.0,
        "intent_ranking": [
            {"name": plain(r.get("name")), "confidence": float(plain(r.get("confidence") or 0.0))}
            for r in parsed.get("intent_ranking") or []
        ],
        "entities": [
            {"start": int(plain(e["start"])), "end": int(plain(e["end"])), "value": plain(e.get("value")),
             "entity": plain(e["entity"])}
            for e in parsed.get("entities") or [] if "start" in e and "end" in e
        ],
    }


def predict_each(interpreter, texts: list[str]) -> list[dict]:
    """One ``interpreter.parse`` per utterance (works for every pipeline)."""
    return [normalise_parse(t, interpreter.parse(t)) for t in texts]


def predict(interpreter, texts: list[str]) -> list[dict]:
    """Predict all texts: batched when every component supports it, else one parse per text."""
    try:
        from nlu_ci.engine.batch import predict_batch
    except ImportError:
        return predict_each(interpreter, texts)
    batched = predict_batch(interpreter, texts)
    return predict_each(interpreter, texts) if batched is None else batched
