"""Rasa 2/3 YAML, {...} entity markup and Rasa project folders read as rasa_nlu 0.15 TrainingData."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu_ci.data import dataset, notes_of
from nlu_ci.errors import DataError

FILES = Path(__file__).parent / "files"
NLU_YML = FILES / "nlu.yml"
PROJECT = FILES / "rasa1_project"


def by_text(data) -> dict:
    return {m.text: m for m in data.training_examples}


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_rasa3_yaml_examples_entities_synonyms_regex_lookup():
    data = dataset.load_training_data(NLU_YML)
    examples = by_text(data)
    assert len(examples) == 47
    assert {m.get("intent") for m in data.training_examples} == {"greet", "goodbye", "book_flight", "check_balance",
                                                                 "chitchat/ask_name"}
    fly = examples["fly from Berlin to Paris"]  # the {...} markup is parsed, never trained as text
    assert fly.get("entities") == [{"start": 9, "end": 15, "value": "Berlin", "entity": "city"},
                                   {"start": 19, "end": 24, "value": "Paris", "entity": "city"}]
    nyc = examples["book a flight to NYC"].get("entities")[0]
    assert (nyc["entity"], nyc["value"]) == ("city", "New York")
    assert examples["how much is on my savings account"].get("entities")[0]["value"] == "savings"  # list form
    assert examples["show me my account balance"].get("intent") == "check_balance"
    assert data.entity_synonyms["Big Apple"] == "New York" and data.entity_synonyms["pink pig"] == "savings"
    assert data.entity_synonyms["NYC"] == "New York"  # from the annotation, as rasa_nlu's Markdown reader does
    assert data.regex_features == [{"name": "account_number", "pattern": r"\d{10,12}"}]
    assert data.lookup_tables == [{"name": "city", "elements": ["Berlin", "Paris", "London", "Rome"]}]
    assert not any("{" in m.text or "](" in m.text for m in data.training_examples)


def test_roles_groups_metadata_and_retrieval_intents_are_noted_with_file_and_line():
    notes = notes_of(dataset.load_training_data(NLU_YML)).notes
    role_line = line_of(NLU_YML, '"role": "departure"')
    group_line = line_of(NLU_YML, '"group": "1"')
    assert sum(f"nlu.yml:{role_line}: entity role" in n for n in notes) == 2, notes
    assert any(f"nlu.yml:{group_line}: entity group" in n for n in notes), notes
    assert any("metadata ignored" in n for n in notes)
    assert any("retrieval intent 'chitchat/ask_name'" in n for n in notes)


def test_rasa1_project_folder_skips_stories_domain_config_and_tests():
    data = dataset.load_training_data(PROJECT)
    notes = notes_of(data)
    texts = {m.text for m in data.training_examples}
    assert "hello there test example that must not be trained" not in texts
    assert "a large pizza with olives" in texts  # the {...} annotation in Markdown, parsed
    large = by_text(data)["a large pizza with olives"].get("entities")[0]
    assert (large["start"], large["end"], large["entity"]) == (2, 7, "size")
    skipped = " ".join(notes.skipped)
    for name in ("stories.md", "domain.yml", "config.yml", "tests/"):
        assert name in skipped, skipped
    assert any(f"nlu.md:{line_of(PROJECT / 'data/nlu.md', 'role')}: entity role" in n for n in notes.notes)
    assert data.entity_synonyms["family size"] == "large"


def test_yaml_mixed_with_json_in_one_folder(tmp_path):
    (tmp_path / "nlu.yml").write_text(NLU_YML.read_text())
    (tmp_path / "more.json").write_text(json.dumps({"rasa_nlu_data": {"common_examples": [
        {"text": "cheers", "intent": "goodbye", "entities": []}]}}))
    data = dataset.load_training_data(tmp_path)
    assert len(data.training_examples) == 48 and "cheers" in by_text(data)


@pytest.mark.parametrize("text, needle", [
    ("a: &a [1, 2]\nnlu:\n- intent: x\n  examples: *a\n", "aliases are not allowed"),
    ("nlu: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper"),
    ("nlu:\n- intent: x\n  examples: |\n    - hi\n  - bad\n", "invalid YAML"),
    ("stories:\n- story: x\n", "without an 'nlu:' section"),
    ("nlu:\n- intent: x\n", "has no 'examples'"),
    ("nlu:\n- intent: [x]\n  examples: |\n    - hi\n", "must be a string"),
])
def test_bad_yaml_is_one_line_naming_file_and_line(tmp_path, text, needle):
    p = tmp_path / "nlu.yml"
    p.write_text(text)
    with pytest.raises(DataError, match=needle) as err:
        dataset.load_training_data(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 ["lol"]'] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    p = tmp_path / "bomb.yml"
    p.write_text("\n".join(lines) + "\nnlu:\n- intent: x\n  examples: *a9\n")
    with pytest.raises(DataError, match="aliases"):
        dataset.load_training_data(p)


def test_roles_in_rasa_json_are_noted_and_dropped(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"rasa_nlu_data": {"common_examples": [
        {"text": "fly to Rome", "intent": "fly", "entities": [{"start": 7, "end": 11, "value": "Rome",
                                                             "entity": "city", "role": "destination"}]},
        {"text": "fly home", "intent": "fly"}, {"text": "hi", "intent": "greet"}, {"text": "hey", "intent": "greet"}]}}))
    data = dataset.load_training_data(p)
    assert data.training_examples[0].get("entities") == [{"start": 7, "end": 11, "value": "Rome", "entity": "city"}]
    assert notes_of(data).notes == [f"{p} example 0 ('fly to Rome'): entity role of 'city' ignored "
                                    "(rasa_nlu 0.15 cannot learn roles or groups)"]


def test_unreadable_markup_is_a_listed_repair_not_text(tmp_path):
    p = tmp_path / "nlu.yml"
    p.write_text('nlu:\n- intent: a\n  examples: |\n    - go to [Rome]{"entity": } now\n' +
                 "".join(f"    - a{i}\n" for i in range(150)) +
                 "- intent: b\n  examples: |\n" + "".join(f"    - b{i}\n" for i in range(10)))
    data = dataset.load_training_data(p)
    assert "go to Rome now" in by_text(data)
    (repair,) = notes_of(data).repairs
    assert repair["where"] == f"{p}:4" and repair["action"] == "dropped" and "not JSON" in repair["reason"]


@pytest.mark.parametrize("source", ["nlu.yml", "rasa1_project"])
def test_run_trains_rasa_yaml_and_a_rasa1_project(cli, source):
    r = cli(["run", "--data", str(FILES / source), "--json"])
    assert r.code == 0, r.output
    report = r.json
    assert report["outcome"] == "promoted"
    ignored = " ".join(report["data"]["notes"])
    assert "entity role" in ignored and "cannot learn" in ignored
    assert any(w.startswith("data check ignored_features") for w in report["warnings"])
    if source == "rasa1_project":
        assert len(report["data"]["skipped_files"]) == 4
    trained = json.loads((cli.store / report["candidate"]["model"] / "training_data.json").read_text())
    texts = [e["text"] for e in trained["rasa_nlu_data"]["common_examples"]]
    assert not any("{" in t or "](" in t for t in texts)
    assert report["candidate"]["entity_token_f1"] is not None
