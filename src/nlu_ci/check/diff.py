"""The data diff of a pull-request check: the branch's examples against the active model's data.

Examples are compared by normalised text (``data.text.normalise``, the hash split's key): ``added`` (a text
the reference lacks), ``removed`` (a reference text the branch lacks), ``relabelled`` (the same text with
another intent: a label change, flagged as such; the check's summary lists them). A text the reference
gives several intents is compared by its first one.

The reference is the active model's data: the training examples its folder keeps (rasa_nlu persists
``training_data.json`` into every model) plus the base branch's held-out examples (what the model was
scored on, never trained on) when ``--base-data`` is given; without a model, the base data alone.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from nlu_ci import safeio
from nlu_ci.data.text import normalise
from nlu_ci.errors import DataError

MODEL_DATA = "training_data.json"
LISTED = 50  # examples listed per kind in the report (the counts are always complete)


def labels(examples: Iterable[dict]) -> dict[str, tuple[str, str]]:
    """normalised text -> (text as written, intent); the first intent of a text wins."""
    out: dict[str, tuple[str, str]] = {}
    for e in examples:
        text, intent = e.get("text"), e.get("intent")
        if isinstance(text, str) and text.strip() and intent:
            out.setdefault(normalise(text), (text, str(intent)))
    return out


def model_examples(model_dir: Path) -> list[dict] | None:
    """The training examples a model folder keeps, or None when it keeps none (or unreadable ones)."""
    path = Path(model_dir) / MODEL_DATA
    if not path.is_file():
        return None
    try:
        raw = json.loads(safeio.read_text(path, "model training data", kind="data", error=DataError))
    except (DataError, ValueError, RecursionError):
        return None
    common = (raw.get("rasa_nlu_data") or {}).get("common_examples") if isinstance(raw, dict) else None
    return [e for e in common if isinstance(e, dict)] if isinstance(common, list) else None


def diff(reference: Iterable[dict], branch: Iterable[dict], against: str, listed: int = LISTED) -> dict:
    ref, new = labels(reference), labels(branch)
    added = sorted(k for k in new if k not in ref)
    removed = sorted(k for k in ref if k not in new)
    relabelled = sorted(k for k in new if k in ref and new[k][1] != ref[k][1])
    return {
        "against": against,
        "reference_examples": len(ref), "branch_examples": len(new),
        "added": len(added), "removed": len(removed), "relabelled": len(relabelled),
        "added_examples": [{"text": new[k][0], "intent": new[k][1]} for k in added[:listed]],
        "removed_examples": [{"text": ref[k][0], "intent": ref[k][1]} for k in removed[:listed]],
        "relabelled_examples": [{"text": new[k][0], "old_intent": ref[k][1], "new_intent": new[k][1],
                                 "relabelled": True} for k in relabelled[:listed]],
    }
