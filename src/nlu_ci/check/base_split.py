"""The held-out examples of a pull-request check come from the BASE branch (``--base-data``), not the branch.

``base_split(settings, data, where)``: the base branch's data is split by the nightly job's hash split (same
fraction, same salt), so its test part is exactly what the active model (trained from the base) never saw;
those examples, with the BASE's labels, are the gate's test set. The candidate trains on the branch's data
minus every example whose normalised text is in that test set (no leak, whatever label the branch gives it).
The branch's new examples (texts the base does not have) that the same hash puts in the test part are held
out too and scored apart (``score_apart``: ``report["new_examples"]``), never mixed into the gate's numbers.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from nlu_ci.data import dataset
from nlu_ci.data.dataset import Split, _subset, example_dict, hash_unit
from nlu_ci.data.text import normalise
from nlu_ci.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class BaseSplit(Split):
    apart: list[dict] = field(default_factory=list)  # the branch's new held-out examples, scored apart
    base_info: dict = field(default_factory=dict)


def base_split(settings, data, where: Path | str) -> BaseSplit:
    base_path = Path(settings.base_data)
    base = dataset.load_training_data(base_path, max_repair_share=settings.max_repair_share)
    inner = dataset.hash_split(base, settings.test_fraction, settings.split_salt, base_path)
    test_texts = {normalise(e["text"]) for e in inner.test}
    base_texts = {normalise(m.text) for m in base.training_examples}
    keep, apart = [], []
    for m in data.training_examples:
        key = normalise(m.text)
        if key in test_texts:
            continue  # judged with the base's label; never trained on
        if key not in base_texts and m.get("intent") and hash_unit(m.text, settings.split_salt) < settings.test_fraction:
            apart.append(example_dict(m))
            continue
        keep.append(m)
    if not keep:
        raise DataError(f"{where}: no training examples left once the base branch's held-out examples are removed")
    train = _subset(data, keep)
    params = dict(inner.params, test_from="base", base_data=str(base_path))
    info = {"data": str(base_path), "examples": len(base.training_examples), "test_examples": len(inner.test),
            "new_held_out": len(apart)}
    warnings = [f"base data: {w}" for w in inner.warnings]
    log.info("held-out set from the base branch %s: %d examples; %d new examples of the branch scored apart",
             base_path, len(inner.test), len(apart))
    return BaseSplit(train, inner.test, params, warnings, None, apart, info)


def score_apart(split, candidate, active, report: dict) -> None:
    """Score the branch's new held-out examples with both models, apart from the gate (nothing without a base)."""
    if not isinstance(split, BaseSplit):
        return
    data = getattr(report, "data", None)
    if data is not None:  # the typed report's DataInfo: an extra key of the data section
        data.extra["base"] = split.base_info
    else:
        report["data"]["base"] = split.base_info
    if not split.apart:
        report["new_examples"] = {"examples": 0}
        return
    section = {"examples": len(split.apart), "candidate": _accuracy(candidate, split.apart)}
    if active is not None:
        section["active"] = _accuracy(active, split.apart)
    report["new_examples"] = section


def _accuracy(model, examples: list[dict]) -> dict:
    result = model.evaluate(examples)
    return {"intent_accuracy": result.intent_accuracy, "intent_f1": result.intent_f1}
