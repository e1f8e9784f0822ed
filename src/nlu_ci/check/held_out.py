"""Relabelled examples in the nightly run: both models are judged by the labels the active model was judged by.

A merge that relabels examples (same text, another intent) moves them into the held-out set with their new
labels; a candidate trained on those labels would then be judged by them and win against the model that learnt
the old ones (issue 21: half of one intent relabelled, F1 0.898 vs 0.884, promoted). So the run compares today's
data with the active model's data first:

* every stored model keeps the labels of the examples it was scored on, ``held_out.json`` in its folder (one of
  its checksummed files: ``{"key", "examples", "digest", "labels": {key(text): intent}}``; the key is the first
  16 hex digits of SHA-256 of the normalised text, so the file names no text), and rasa_nlu keeps its training
  examples (``training_data.json``); together they are the *reference* (``reference``);
* a held-out example whose text the reference labels otherwise is judged with the reference's label
  (``guard``), by both models; it is listed in the report's ``data_diff`` (``relabelled_examples``, with
  ``held_out``) and scored apart with its new label (``data_diff.held_out``), never silently;
* a genuine label fix ships when a person accepts exactly those relabels: ``nlu-ci run --accept-relabels
  DIGEST`` (``NLU_CI_ACCEPT_RELABELS``), the digest the rejected run printed (``data_diff.digest``, a SHA-256 of
  the relabelled (text, old, new) triples); then they are judged by the new labels. Other relabels do not match
  the digest and are judged as before. Once promoted, the new model's ``held_out.json`` carries the new labels.

A model stored before ``held_out.json`` existed gives its training examples only (held-out relabels of such a
model are not found; the report says so in ``against``). Examples are matched by normalised text (the hash
split's key); with the same split salt the held-out side of a text never changes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from nlu_ci import safeio
from nlu_ci.check.diff import LISTED, model_examples
from nlu_ci.data.text import normalise
from nlu_ci.errors import NluCiError, StoreError

FILE = "held_out.json"
KEY = "sha256(normalised text)[:16]"


def key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


def _digest(items) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(sorted(items), ensure_ascii=False).encode("utf-8")).hexdigest()


def record(test: list[dict]) -> dict:
    """What ``held_out.json`` holds for a model scored on ``test``."""
    labels = {key(e["text"]): str(e["intent"]) for e in test if e.get("intent")}
    return {"key": KEY, "examples": len(labels), "digest": _digest(labels.items()), "labels": labels}


def write(model_dir: Path, test: list[dict]) -> None:
    """``held_out.json`` into a staged model (before its checksums are taken)."""
    (Path(model_dir) / FILE).write_text(json.dumps(record(test), sort_keys=True) + "\n", encoding="utf-8")


def _read_labels(model_dir: Path) -> dict[str, str] | None:
    path = Path(model_dir) / FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(safeio.read_text(path, "held-out labels", kind="metadata", error=StoreError))
    except (NluCiError, ValueError, RecursionError):
        return None
    labels = raw.get("labels") if isinstance(raw, dict) else None
    if not isinstance(labels, dict):
        return None
    return {str(k): str(v) for k, v in labels.items() if isinstance(v, str)}


@dataclass
class Reference:
    """The labels the active model learnt and was judged by: key -> intent (texts known for its training ones)."""

    model: str
    labels: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    held_out_recorded: bool = False

    @property
    def against(self) -> str:
        parts = ["training examples"] if self.texts else []
        parts += ["held-out labels"] if self.held_out_recorded else []
        return f"the active model {self.model}'s {' and '.join(parts) or 'data (none recorded)'}"


def reference(name: str | None, model_dir: Path | None) -> Reference | None:
    """The active model's reference, or None without an active model or when its folder records nothing."""
    if not name or model_dir is None:
        return None
    ref = Reference(name)
    for e in model_examples(model_dir) or []:
        text, intent = e.get("text"), e.get("intent")
        if isinstance(text, str) and text.strip() and intent:
            ref.labels.setdefault(key(text), str(intent))
            ref.texts.setdefault(key(text), text)
    held = _read_labels(model_dir)
    if held is not None:
        ref.held_out_recorded = True
        for k, intent in held.items():
            ref.labels.setdefault(k, intent)
    return ref if ref.labels else None


@dataclass
class Guarded:
    """``test``: the gate's held-out examples (the reference's labels where they differ, unless accepted);
    ``apart``: the relabelled held-out examples with their new labels; ``section``: the report's ``data_diff``."""

    test: list[dict]
    apart: list[dict]
    section: dict


def guard(ref: Reference, examples: list[dict], test: list[dict], accept: str | None = None,
          listed: int = LISTED) -> Guarded:
    """Compare today's ``examples`` (all of them, as ``example_dict``) with ``ref``; judge ``test`` by it."""
    today: dict[str, dict] = {}
    for e in examples:
        if isinstance(e.get("text"), str) and e["text"].strip() and e.get("intent"):
            today.setdefault(key(e["text"]), e)
    held = {key(e["text"]) for e in test}
    added = sorted(k for k in today if k not in ref.labels)
    removed = sorted(k for k in ref.labels if k not in today)
    relabelled = sorted((k for k in today if k in ref.labels and ref.labels[k] != str(today[k]["intent"])),
                        key=lambda k: today[k]["text"])
    triples = [(today[k]["text"], ref.labels[k], str(today[k]["intent"])) for k in relabelled]
    digest = _digest(triples) if triples else None
    accepted = bool(digest and accept and len(accept) >= 15 and digest.startswith(accept))
    gate_test, apart = [], []
    for e in test:
        k = key(e["text"])
        old = ref.labels.get(k)
        if old is not None and old != e["intent"]:
            apart.append(e)
            if not accepted:
                e = dict(e, intent=old)  # judged by the label the active model was judged by
        gate_test.append(e)
    section = {
        "against": ref.against,
        "reference_examples": len(ref.labels), "branch_examples": len(today),
        "added": len(added), "removed": len(removed), "relabelled": len(relabelled),
        "held_out_relabelled": len(apart),
        "digest": digest, "accepted": accepted,
        "judged_by": "the data's labels (--accept-relabels)" if accepted or not apart else
                     "the active model's labels",
        "added_examples": [{"text": today[k]["text"], "intent": today[k]["intent"]} for k in added[:listed]],
        "removed_examples": [{"text": ref.texts[k], "intent": ref.labels[k]} for k in removed if k in ref.texts][:listed],
        "relabelled_examples": [{"text": t, "old_intent": old, "new_intent": new, "relabelled": True,
                                 "held_out": key(t) in held} for t, old, new in triples[:listed]],
    }
    if accept and not accepted:
        section["accept_relabels_mismatch"] = accept
    return Guarded(gate_test, apart, section)


def warning(section: dict) -> str | None:
    """One line for the run's warnings (and so the summary) when examples were relabelled."""
    n = section.get("relabelled") or 0
    if not n:
        return None
    line = (f"data diff: {n} examples relabelled against {section['against']} "
            f"({section.get('held_out_relabelled', 0)} held out, judged by {section['judged_by']})")
    if section.get("accepted"):
        return line + f"; relabels {section['digest'][:19]} accepted"
    if section.get("accept_relabels_mismatch"):
        line += f"; --accept-relabels {section['accept_relabels_mismatch'][:19]} does not match these relabels"
    return line + f"; to ship them as a label fix: nlu-ci run --accept-relabels {section['digest']}"
