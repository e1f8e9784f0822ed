"""`nlu-ci validate` finds each kind of problem; --strict makes warnings fail; JSON and text output."""
from __future__ import annotations

import pytest

from nlu_ci.data.checks import near_duplicates, within_one_edit
from support.data import load_sample, write_data

BASE = load_sample()
EX = BASE["rasa_nlu_data"]["common_examples"]
SIZE = [{"text": "a Big pizza", "intent": "order_pizza", "entities": [{"start": 2, "end": 5, "value": "Big",
                                                                      "entity": "Size"}]}]
WARNINGS_ONLY = EX + SIZE + [
    {"text": "so  long then", "intent": "goodbye", "entities": []},
    {"text": "So long then", "intent": "goodbye", "entities": []},
    {"text": "yes indeed", "intent": "affirms", "entities": []},
    {"text": "yes sure thing", "intent": "affirms", "entities": []},
]
SYNONYMS = [{"value": "large", "synonyms": ["family size", "XXL"]}]


def data_file(tmp_path, examples, name="data.json"):
    base = {"rasa_nlu_data": dict(BASE["rasa_nlu_data"], entity_synonyms=SYNONYMS)}
    return write_data(tmp_path / name, examples, base)


def checks_of(report: dict) -> dict:
    return {f["check"]: f for f in report["validation"]["findings"]}


def test_each_problem_kind_is_found(cli, tmp_path):
    greet = next(e["text"] for e in EX if e["intent"] == "greet")
    examples = WARNINGS_ONLY + [{"text": greet.upper(), "intent": "goodbye", "entities": []},
                                {"text": "all alone", "intent": "lonely", "entities": []}]
    r = cli(["validate", "--data", str(data_file(tmp_path, examples)), "--json"])
    assert r.code == 2, r.output  # an intent under the split's minimum is an error
    found = checks_of(r.json)
    assert found["too_few_examples"]["severity"] == "error" and found["too_few_examples"]["items"] == [
        {"intent": "lonely", "examples": 1}]
    conflict = found["conflicting_labels"]["items"]
    assert {"text": " ".join(greet.lower().split()), "intents": ["goodbye", "greet"]} in conflict
    assert {"text": "so long then", "intent": "goodbye", "count": 2} in found["duplicates"]["items"]
    assert ["affirm", "affirms"] in found["near_duplicate_intents"]["items"]
    assert ["Size", "size"] in found["near_duplicate_entities"]["items"]
    assert found["unused_synonyms"]["items"] == [{"text": "XXL", "value": "large"}]
    assert r.json["passed"] is False


def test_warnings_pass_unless_strict(cli, tmp_path):
    path = data_file(tmp_path, WARNINGS_ONLY)
    r = cli(["validate", "--data", str(path)])
    assert r.code == 0, r.output
    assert "WARNING near_duplicate_entities: 1 group(s) of entity names look like one name written twice: Size/size" \
        in r.stdout
    assert r.stdout.splitlines()[0].endswith("passed")
    strict = cli(["validate", "--data", str(path), "--strict"])
    assert strict.code == 2 and "FAILED (strict)" in strict.stdout
    assert cli(["validate", "--data", str(path)], NLU_CI_STRICT_DATA="true").code == 2


def test_train_test_overlap_with_test_data(cli, tmp_path):
    train = data_file(tmp_path, EX)
    test = write_data(tmp_path / "test.json", [EX[0], EX[40], {"text": "a brand new sentence", "intent": "greet",
                                                               "entities": []}])
    r = cli(["validate", "--data", str(train), "--test-data", str(test), "--json"])
    assert r.code == 0, r.output
    overlap = checks_of(r.json)["train_test_overlap"]
    assert overlap["count"] == 2 and " ".join(EX[0]["text"].lower().split()) in overlap["items"]


def test_clean_data_has_no_findings(cli, tmp_path):
    unique = list({" ".join(e["text"].lower().split()): e for e in EX}.values())  # the sample repeats 10 texts
    r = cli(["validate", "--data", str(write_data(tmp_path / "d.json", unique)), "--strict", "--json"])
    assert r.code == 0, r.output
    assert r.json["validation"]["findings"] == [] and r.json["passed"] is True


def test_rasa_project_folder_validates_with_notes(cli):
    from pathlib import Path

    project = Path(__file__).parent / "files" / "rasa1_project"
    r = cli(["validate", "--data", str(project), "--json"])
    assert r.code == 0, r.output
    found = checks_of(r.json)
    assert found["skipped_files"]["severity"] == "info" and found["skipped_files"]["count"] == 4
    assert "entity role" in found["ignored_features"]["message"]
    assert found["unused_synonyms"]["items"] == [{"text": "XL", "value": "large"}]


def test_run_validate_stage_reports_and_strict_data_fails_before_training(cli, tmp_path):
    path = data_file(tmp_path, WARNINGS_ONLY)
    r = cli(["run", "--data", str(path), "--strict-data", "--json"])
    assert r.code == 2, r.output
    assert r.json["outcome"] == "failed" and "data check" in r.json["error"] and "--strict-data" in r.json["error"]
    assert "train" not in r.json["durations"]
    assert checks_of(r.json["data"])["near_duplicate_entities"]["count"] == 1


@pytest.mark.parametrize("a, b, near", [("affirm", "affirms", True), ("kitten", "sitten", True),
                                        ("kitten", "sitting", False), ("abc", "abd", True), ("ab", "ba", False)])
def test_edit_distance(a, b, near):
    assert within_one_edit(a, b) is near and within_one_edit(b, a) is near


def test_near_duplicates_ignore_digit_variants_and_short_names():
    assert near_duplicates(["city1", "city2", "ab", "ac"]) == []
    assert near_duplicates(["get_weather", "getWeather", "Get-Weather"]) == [["Get-Weather", "getWeather",
                                                                            "get_weather"]]


def test_loaded_labels_are_one_string_object_each():
    """data.dataset.share_labels: equal intent names, entity types and values are one object after loading."""
    from nlu_ci.data import dataset
    from support.data import SAMPLE

    data = dataset.load_training_data(SAMPLE)
    intents = [m.get("intent") for m in data.training_examples]
    assert len({id(i) for i in intents}) == len(set(intents)) < len(intents)
    types = [e["entity"] for m in data.training_examples for e in m.get("entities") or []]
    assert types and len({id(t) for t in types}) == len(set(types))
