"""data.rasa_schema: the plain-Python check of rasa_nlu 0.15's training-data schema says what rasa_nlu's own
jsonschema check says, on real files and on mutated documents, and a bad file keeps rasa_nlu's error."""
from __future__ import annotations

import copy
import json
import random

import pytest

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.data import rasa_schema
from support import growth
from support.data import SAMPLE

VALUES = [None, True, False, 0, 3, 2.5, "", "x", "play", [], ["x"], [1], {}, {"a": 1}, [{"text": "hi"}]]


_VALIDATOR = []


def _stock_passes(doc) -> bool:
    """What rasa_nlu's ``validate_rasa_nlu_data`` decides (jsonschema's ``validate``: the validator class
    for the schema, here built once)."""
    from jsonschema.validators import validator_for
    from rasa_nlu.training_data.formats import rasa

    if not _VALIDATOR:
        schema = rasa._rasa_nlu_data_schema()
        _VALIDATOR.append(validator_for(schema)(schema))
    return _VALIDATOR[0].is_valid(doc)


def _seed() -> dict:
    return {"rasa_nlu_data": {
        "common_examples": [
            {"text": "fly to paris", "intent": "book", "entities": [{"start": 7, "end": 12, "value": "paris",
                                                                     "entity": "city"}]},
            {"text": "hello", "intent": "greet"}, {"text": "bye"}],
        "intent_examples": [{"text": "hi there", "intent": "greet"}],
        "entity_examples": [{"text": "to rome", "entities": [{"start": 3, "end": 7, "entity": "city"}]}],
        "regex_features": [{"name": "zip", "pattern": "[0-9]{5}"}],
        "lookup_tables": [{"name": "city", "elements": ["paris", "rome"]}, {"name": "f", "elements": "data/x.txt"}],
        "entity_synonyms": [{"value": "paris", "synonyms": ["PAR"]}]}}


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


def _mutated(doc: dict, rng: random.Random) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.choice([1, 1, 2])):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        how = rng.random()
        if how < 0.6:
            parent[path[-1]] = copy.deepcopy(rng.choice(VALUES))
        elif how < 0.8 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "text", "intent", "entities", "start", "rasa_nlu_data"])] = rng.choice(VALUES)
        else:
            parent.append(copy.deepcopy(rng.choice(VALUES)))
    return doc


def test_real_training_files_pass_both_checks():
    docs = [json.loads(SAMPLE.read_text(encoding="utf-8"))]
    if growth.available():
        docs.append(json.loads(growth.HWU64.read_text(encoding="utf-8")))
    for doc in docs:
        assert rasa_schema.passes(doc) and _stock_passes(doc)


def test_mutated_documents_get_the_stock_verdict():
    rng = random.Random(7)
    verdicts = {True: 0, False: 0}
    for _ in range(3000):
        doc = _mutated(_seed(), rng)
        stock = _stock_passes(doc)
        assert rasa_schema.passes(doc) == stock, json.dumps(doc)
        verdicts[stock] += 1
    assert min(verdicts.values()) > 300     # both verdicts well covered
    for doc in (None, [], "x", {}, {"rasa_nlu_data": None}, {"other": 1}, {"rasa_nlu_data": {"common_examples": {}}}):
        assert rasa_schema.passes(doc) == _stock_passes(doc)


def test_a_bad_file_keeps_rasas_error(tmp_path):
    from jsonschema import ValidationError
    from rasa_nlu.training_data import load_data

    rasa_schema.install()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": [{"text": "hi", "intent": 3}]}}))
    with pytest.raises(ValidationError, match="3 is not of type 'string'. Failed to validate training data"):
        load_data(str(path))
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": [{"text": "hi", "intent": "greet"}]}}))
    assert [m.get("intent") for m in load_data(str(path)).training_examples] == ["greet"]
