"""rasa_nlu parse results -> plain Python predictions (the shape in docs/architecture.md)."""
from __future__ import annotations

from typing import Any

_PLAIN = frozenset((str, int, float, bool, type(None)))


def plain(value: Any) -> Any:
    """numpy scalars and friends -> JSON-friendly Python types."""
    if type(value) in _PLAIN:   # most values already are (a batch of 1,076 predictions: ~6,000 calls)
        return value
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
        "entities": [_entity(e) for e in parsed.get("entities") or [] if "start" in e and "end" in e],
    }


def _entity(e: dict) -> dict:
    """start, end, value, entity, and the extractor's confidence when it gives one."""
    out = {"start": int(plain(e["start"])), "end": int(plain(e["end"])), "value": plain(e.get("value")),
           "entity": plain(e["entity"])}
    if isinstance(e.get("confidence"), (int, float)) or hasattr(e.get("confidence"), "item"):
        out["confidence"] = float(plain(e["confidence"]))
    return out


def predict_each(interpreter, texts: list[str]) -> list[dict]:
    """One ``interpreter.parse`` per utterance (works for every pipeline)."""
    return [normalise_parse(t, interpreter.parse(t)) for t in texts]
