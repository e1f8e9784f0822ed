"""rasa_nlu 0.15's check of a JSON training file against its schema (``validate_rasa_nlu_data`` in
rasa_nlu/training_data/formats/rasa.py), quick for the files that pass it.

jsonschema walks every example, entity and property of the document through its generic validator, then
``best_match`` walks the errors: on HWU64 (9,960 examples) that was most of the job's ``load`` stage, and it
grows with the data. ``validate`` here first checks the same schema written out rule by rule in plain
Python (``passes``); only when that finds anything does it call rasa_nlu's own check, which raises its own
error, so a bad file gets exactly the message it got before. ``passes`` never accepts what the schema
rejects, and accepts what it accepts (tests/data/test_rasa_schema.py: both on real files and on thousands
of mutated documents). ``install()`` puts ``validate`` where rasa_nlu's reader looks it up.
"""
from __future__ import annotations

from typing import Any

_stock = None

EXAMPLE_LISTS = ("common_examples", "intent_examples", "entity_examples")


def _str(value: Any) -> bool:
    return type(value) is str


def _number(value: Any) -> bool:                # JSON Schema "number": not a boolean
    return type(value) in (int, float)


def _optional(item: dict, key: str, check) -> bool:
    return key not in item or check(item[key])


def _entity(item: Any) -> bool:
    return (type(item) is dict and "start" in item and "end" in item and "entity" in item
            and _number(item["start"]) and _number(item["end"]) and _str(item["entity"])
            and _optional(item, "value", _str))


def _example(item: Any) -> bool:
    if type(item) is not dict:
        return False
    text = item.get("text")
    if not _str(text) or len(text) < 1 or not _optional(item, "intent", _str):
        return False
    entities = item.get("entities", ())
    return "entities" not in item or (type(entities) is list and all(_entity(e) for e in entities))


def _regex(item: Any) -> bool:
    return type(item) is dict and _optional(item, "name", _str) and _optional(item, "pattern", _str)


def _elements(value: Any) -> bool:              # oneOf: an array of strings, or a string
    return _str(value) or (type(value) is list and all(_str(v) for v in value))


def _lookup(item: Any) -> bool:
    return type(item) is dict and _optional(item, "name", _str) and _optional(item, "elements", _elements)


SECTIONS = {**dict.fromkeys(EXAMPLE_LISTS, _example), "regex_features": _regex, "lookup_tables": _lookup}


def passes(data: Any) -> bool:
    """Whether ``data`` satisfies rasa_nlu 0.15's training-data schema (``_rasa_nlu_data_schema``)."""
    if type(data) is not dict or any(key != "rasa_nlu_data" for key in data):   # additionalProperties: false
        return False
    if "rasa_nlu_data" not in data:
        return True
    body = data["rasa_nlu_data"]
    if type(body) is not dict:
        return False
    for key, check in SECTIONS.items():
        if key in body:
            items = body[key]
            if type(items) is not list or not all(check(item) for item in items):
                return False
    return True


def validate(data: Any) -> None:
    """rasa_nlu's ``validate_rasa_nlu_data``: returns when the schema holds, raises its error otherwise."""
    if passes(data):
        return
    _stock(data)


def install() -> None:
    """Make rasa_nlu's JSON reader (``RasaReader.read_from_json``) call ``validate``; idempotent."""
    global _stock
    from rasa_nlu.training_data.formats import rasa

    if rasa.validate_rasa_nlu_data is not validate:
        _stock = rasa.validate_rasa_nlu_data
        rasa.validate_rasa_nlu_data = validate
