"""Training data: load (as rasa_nlu reads it), validate, fingerprint, and split by a stable hash.

The split is the heart of a fair nightly comparison. Each example goes to the test set when a
salted SHA-256 of its normalised text falls below ``test_fraction``: the decision depends on the
text alone, so an example never moves between train and test as the data grows night after night,
and the active model (trained on yesterday's train side) has never seen today's test examples.
Within each intent about ``test_fraction`` of the examples land in test; an intent whose examples
all hashed into test keeps them for training instead (it could not be learned otherwise), with a
warning. Everything here is O(n log n) at most.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlu_ci import rasa_compat, safeio
from nlu_ci.data import attach, cleaning, notes_of, readers, sources
from nlu_ci.data import safety as datasafety
from nlu_ci.data.text import MIN_EXAMPLES_PER_INTENT, normalise
from nlu_ci.errors import DataError

rasa_compat.apply()  # the shims before rasa_nlu is imported (below, lazily)
log = logging.getLogger(__name__)

DATA_SUFFIXES = sources.SUFFIXES
MIN_INTENTS = 2
@dataclass
class Split:
    train: Any  # rasa_nlu TrainingData
    test: list[dict]
    params: dict
    warnings: list[str] = field(default_factory=list)
    test_notes: Any = None  # data.Notes of --test-data (repairs, notes), None for the hash split

    @property
    def test_intents(self) -> list[str]:
        return sorted({e["intent"] for e in self.test})


# ---------------------------------------------------------------- loading

def _load_one(path: Path):
    from rasa_nlu.training_data.loading import _markdown_section_markers

    raw = safeio.read_text(path, "training data", kind="data", error=DataError)  # regular file, size cap
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    if path.suffix.lower() == ".json" or raw.lstrip().startswith(("{", "[")):
        parsed = datasafety.parse_json(raw, path)  # one-line errors, nesting limit
        if not isinstance(parsed, dict) or not isinstance(parsed.get("rasa_nlu_data"), dict):
            raise DataError(f"{path}: not Rasa NLU JSON (expected an object with a 'rasa_nlu_data' object)")
        common = parsed["rasa_nlu_data"].get("common_examples", [])
        if not isinstance(common, list):
            raise DataError(f"{path}: 'rasa_nlu_data.common_examples' must be a list")
        for i, ex in enumerate(common):
            if not isinstance(ex, dict) or not isinstance(ex.get("text"), str):
                raise DataError(f"{path}: common_examples[{i}] has no 'text' string")
    elif not sources.is_yaml(path):
        if not any(marker in raw for marker in _markdown_section_markers):
            raise DataError(f"{path}: neither Rasa NLU JSON nor Markdown (no '## intent:' section found)")
    try:
        loaded = readers.read(path, raw)  # JSON and Markdown by rasa_nlu, Rasa 2/3 YAML and {...} markup by nlu-ci
    except DataError:
        raise
    except Exception as err:  # rasa_nlu's readers raise anything from KeyError to ValueError
        raise DataError(f"{path}: rasa_nlu could not read it: {type(err).__name__}: {err}") from None
    datasafety.check_loaded(loaded, path)  # entity offsets, regexes, lookup-table files
    return loaded


def _load_all(path: Path, max_repair_share: float):
    files, skipped = sources.data_files(path)
    datasets = [_load_one(f) for f in files]
    notes = cleaning.combine(datasets, files, skipped)  # entity spans trimmed or dropped, each listed
    data = datasets[0] if len(datasets) == 1 else datasets[0].merge(*datasets[1:])
    cleaning.enforce(notes, path, max_repair_share)
    return attach(data, notes)


def load_training_data(path: Path | str, *, max_repair_share: float = cleaning.MAX_REPAIR_SHARE):
    """Load a Rasa NLU JSON/Markdown/YAML file, or every such file in a folder (merged); what was repaired or
    skipped is in ``nlu_ci.data.notes_of(data)``."""
    path = Path(path)
    data = _load_all(path, max_repair_share)
    validate(data, path)
    share_labels(data)
    return data


def share_labels(data) -> None:
    """One string object per distinct intent name, entity type and entity value (``sys.intern``): a JSON
    reader makes a new one for every occurrence (-29 MB of the job's memory at 100k examples, held through
    the whole run and by every training child). Equal strings: nothing else changes."""
    for message in data.training_examples:
        intent = message.data.get("intent")
        if isinstance(intent, str):
            message.data["intent"] = sys.intern(intent)
        for entity in message.data.get("entities") or ():
            for key in ("entity", "value"):
                if isinstance(entity.get(key), str):
                    entity[key] = sys.intern(entity[key])


# ---------------------------------------------------------------- validation

def example_dict(message) -> dict:
    return {
        "text": message.text,
        "intent": message.get("intent"),
        "entities": [
            {"start": e["start"], "end": e["end"], "value": e.get("value"), "entity": e["entity"]}
            for e in (message.get("entities") or [])
        ],
    }


def validate(data, where: Path, *, min_intents: int = MIN_INTENTS) -> None:
    examples = data.training_examples
    if not examples:
        raise DataError(f"{where}: no training examples")
    for i, message in enumerate(examples):
        if not (message.text or "").strip():
            raise DataError(f"{where}: example {i} has empty text")
    intents = Counter(m.get("intent") for m in examples if m.get("intent"))
    if len(intents) < min_intents:
        found = ", ".join(sorted(intents)) or "none"
        raise DataError(f"{where}: needs at least {min_intents} intents to train a classifier, found {len(intents)} ({found})")


def validate_test_examples(examples: list[dict], where: Path) -> None:
    if not examples:
        raise DataError(f"{where}: no test examples with an intent")


# ---------------------------------------------------------------- fingerprint

def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def fingerprint(data, config_text: str, split_params: dict) -> str:
    """SHA-256 of the training data (order-insensitive), the pipeline config and the split."""
    lines = sorted(_canonical(example_dict(m)) for m in data.training_examples)
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    extras = {
        "synonyms": sorted(data.entity_synonyms.items()),
        "regex": sorted(_canonical(r) for r in data.regex_features),
        "lookup": sorted(_canonical(t) for t in getattr(data, "lookup_tables", []) or []),
        "config": config_text,
        "split": split_params,
    }
    h.update(_canonical(extras).encode("utf-8"))
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- split

def hash_unit(text: str, salt: str) -> float:
    """A number in [0, 1) that depends only on the salt and the normalised text."""
    digest = hashlib.sha256(f"{salt}\x00{normalise(text)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _subset(data, messages):
    from rasa_nlu.training_data import TrainingData

    return TrainingData(training_examples=list(messages), entity_synonyms=dict(data.entity_synonyms),
                        regex_features=list(data.regex_features),
                        lookup_tables=list(getattr(data, "lookup_tables", []) or []))


def hash_split(data, fraction: float, salt: str, where: Path | str = "training data") -> Split:
    by_intent: dict[str, list] = defaultdict(list)
    no_intent = []
    for message in data.training_examples:
        intent = message.get("intent")
        (by_intent[intent] if intent else no_intent).append(message)
    too_small = sorted(i for i, msgs in by_intent.items() if len(msgs) < MIN_EXAMPLES_PER_INTENT)
    if too_small:
        shown = ", ".join(f"{i} ({len(by_intent[i])})" for i in too_small[:5])
        raise DataError(f"{where}: the split needs at least {MIN_EXAMPLES_PER_INTENT} examples per intent; "
                        f"too few: {shown}")
    train, test, warnings = list(no_intent), [], []
    for intent in sorted(by_intent):
        msgs = by_intent[intent]
        held = [m for m in msgs if hash_unit(m.text, salt) < fraction]
        if len(held) == len(msgs):
            warnings.append(f"intent '{intent}': all {len(msgs)} examples hashed into the test set; "
                            "kept them for training (add more examples)")
            held = []
        held_ids = {id(m) for m in held}
        train.extend(m for m in msgs if id(m) not in held_ids)
        test.extend(example_dict(m) for m in held)
    if not test:
        raise DataError(f"{where}: the hash split (test fraction {fraction}) left no test examples; "
                        "add data or pass --test-data")
    params = {"method": "hash", "fraction": fraction, "salt": salt, "key": "sha256(salt, normalised text)"}
    return Split(_subset(data, train), test, params, warnings)


def file_split(data, test_path: Path, max_repair_share: float = cleaning.MAX_REPAIR_SHARE) -> Split:
    test_data = load_training_data_for_test(test_path, max_repair_share=max_repair_share)
    test = [example_dict(m) for m in test_data.training_examples if m.get("intent")]
    validate_test_examples(test, test_path)
    train_texts = {normalise(m.text) for m in data.training_examples}
    overlap = sum(1 for e in test if normalise(e["text"]) in train_texts)
    warnings = []
    if overlap:
        warnings.append(f"{overlap} of {len(test)} test examples also appear in the training data")
    unknown = sorted({e["intent"] for e in test} - {m.get("intent") for m in data.training_examples})
    if unknown:
        warnings.append(f"test intents not in the training data: {', '.join(unknown[:5])}")
    digest = hashlib.sha256(Path(test_path).read_bytes()).hexdigest() if Path(test_path).is_file() else None
    params = {"method": "file", "path": str(test_path), "sha256": digest}
    return Split(data, test, params, warnings, test_notes=notes_of(test_data))


def load_training_data_for_test(path: Path, *, max_repair_share: float = cleaning.MAX_REPAIR_SHARE):
    return _load_all(Path(path), max_repair_share)


def split_params_differ(a: dict | None, b: dict | None) -> bool:
    keys = ("method", "fraction", "salt", "sha256")
    if not a or not b:
        return False
    return any(a.get(k) != b.get(k) for k in keys)
