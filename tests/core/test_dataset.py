"""Loading, validation, fingerprint and the stable hash split."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from nlu_ci.data import dataset
from nlu_ci.errors import DataError
from support.data import SAMPLE, load_sample, write_data

MD = """## intent:greet
- hello
- hi there
- good morning

## intent:order_pizza
- a [large](size) pizza with [ham](topping)
- one [small](size) pizza please
- i want a [medium](size) pizza

## synonym:large
- family size
"""


def test_loads_json_markdown_and_folders(tmp_path):
    md = tmp_path / "d" / "more.md"
    md.parent.mkdir()
    md.write_text(MD)
    (tmp_path / "d" / "base.json").write_text(SAMPLE.read_text())
    data = dataset.load_training_data(md)
    assert len(data.training_examples) == 6
    ents = [e for m in data.training_examples for e in m.get("entities", [])]
    assert {"size", "topping"} <= {e["entity"] for e in ents}
    merged = dataset.load_training_data(tmp_path / "d")
    assert len(merged.training_examples) == 240 + 6


def test_malformed_json_names_line_and_column(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"rasa_nlu_data": {\n "common_examples": [\n  {"text": "a" "intent": "b"}]}}')
    with pytest.raises(DataError, match=r"x\.json.*line 3"):
        dataset.load_training_data(p)


def test_split_is_stable_as_data_grows():
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    from rasa_nlu.training_data import Message, TrainingData

    def td(exs):
        return TrainingData([Message(e["text"], {"intent": e["intent"], "entities": e["entities"]}) for e in exs])

    small = dataset.hash_split(td(examples[::2]), 0.2, "s")
    big = dataset.hash_split(td(examples), 0.2, "s")
    small_test = {e["text"] for e in small.test}
    big_test = {e["text"] for e in big.test}
    small_train = {m.text for m in small.train.training_examples}
    assert small_test <= big_test  # nothing that was held out moves to train
    assert not (small_train & big_test)  # nothing that was trained on becomes test
    # roughly the fraction within each intent
    per_intent = Counter(e["intent"] for e in big.test)
    totals = Counter(e["intent"] for e in examples)
    for intent, n in totals.items():
        assert 0 < per_intent[intent] < n
    assert 0.1 < len(big.test) / len(examples) < 0.3
    # another salt draws another split
    assert {e["text"] for e in dataset.hash_split(td(examples), 0.2, "other").test} != big_test


def test_fingerprint_ignores_order_but_not_content_config_or_split(tmp_path):
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    a = dataset.load_training_data(write_data(tmp_path / "a.json", examples))
    b = dataset.load_training_data(write_data(tmp_path / "b.json", list(reversed(examples))))
    c = dataset.load_training_data(write_data(tmp_path / "c.json", examples[:-1]))
    split = {"method": "hash", "fraction": 0.2}
    fa = dataset.fingerprint(a, "cfg", split)
    assert fa == dataset.fingerprint(b, "cfg", split)
    assert fa != dataset.fingerprint(c, "cfg", split)
    assert fa != dataset.fingerprint(a, "cfg2", split)
    assert fa != dataset.fingerprint(a, "cfg", dict(split, fraction=0.3))


def test_intent_with_every_example_in_test_stays_in_train(tmp_path):
    low = [t for t in (f"low {i}" for i in range(200)) if dataset.hash_unit(t, "s") < 0.5][:3]
    mixed = [f"other {i}" for i in range(20)]
    examples = [{"text": t, "intent": "a", "entities": []} for t in low] + \
               [{"text": t, "intent": "b", "entities": []} for t in mixed]
    data = dataset.load_training_data(write_data(tmp_path / "d.json", examples))
    split = dataset.hash_split(data, 0.5, "s")
    assert split.warnings and "intent 'a'" in split.warnings[0] and "kept them for training" in split.warnings[0]
    assert {m.text for m in split.train.training_examples} >= set(low)
    assert {e["intent"] for e in split.test} == {"b"}


def test_file_split_warns_about_overlap(tmp_path):
    data = dataset.load_training_data(SAMPLE)
    test = tmp_path / "test.json"
    test.write_text(json.dumps({"rasa_nlu_data": {"common_examples": load_sample()["rasa_nlu_data"]["common_examples"][:5]}}))
    split = dataset.file_split(data, test)
    assert len(split.test) == 5 and "also appear in the training data" in split.warnings[0]
    assert split.params["method"] == "file" and len(split.params["sha256"]) == 64
