"""policy.yml / must_pass.yml: defaults, the shipped examples, and one clear error line per mistake."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nlu_ci.errors import ConfigError
from nlu_ci.gate import policy as pol
from support.data import ROOT, SAMPLE


def write(tmp_path: Path, text: str, name: str = "policy.yml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        pol.load_policy(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path.parent)), message
    return message


def test_none_is_the_documented_default():
    p = pol.load_policy(None)
    assert p == pol.DEFAULT
    assert (p.min_intent_f1, p.min_improvement, p.non_inferiority_margin) == (0.0, None, 0.01)
    assert (p.significance.test, p.significance.alpha, p.significance.direction) == ("mcnemar", 0.05, "not_worse")
    assert (p.bootstrap.resamples, p.bootstrap.seed, p.bootstrap.gate) == (2000, 0, False)
    assert (p.per_intent_max_drop, p.min_support) == (0.15, 5)
    assert (p.entity_f1.min, p.entity_f1.max_drop) == (0.0, 0.05)
    assert p.must_pass == () and p.source == "built-in"
    # an empty mapping in a file means the same policy
    assert pol.parse_policy({}, "x.yml") == pol.Policy(source="x.yml")


@pytest.mark.parametrize("folder", [ROOT, ROOT / "k8s" / "base" / "config"], ids=["top-level", "k8s-configmap"])
def test_the_shipped_policy_is_the_built_in_one(folder):
    """One gate everywhere: the image and the ConfigMap carry policy.yml, `make run` reads it, and it states
    exactly the built-in policy (no must-pass list: that belongs to a bot, the sample's to data/sample)."""
    p = pol.load_policy(folder / "policy.yml")
    assert replace(p, source="built-in") == pol.DEFAULT
    assert p.must_pass == () and not (folder / "must_pass.yml").exists()
    text = (folder / "policy.yml").read_text()
    assert "non_inferiority_margin: 0.01" in text and "#   min_improvement: 0.0" in text  # the strict rule: one line


def test_the_strict_rule_is_one_line_away(tmp_path):
    p = pol.load_policy(write(tmp_path, "min_improvement: 0.0\n"))
    assert (p.min_improvement, p.non_inferiority_margin) == (0.0, None)
    p = pol.load_policy(write(tmp_path, "non_inferiority_margin: off\n"))
    assert (p.min_improvement, p.non_inferiority_margin) == (None, None)  # the comparison switched off


def test_sample_policy_and_must_pass_match_the_sample_data():
    folder = ROOT / "data" / "sample"
    p = pol.load_policy(folder / "policy.yml")
    assert p.must_pass_file == str(folder / "must_pass.yml")
    assert len(p.must_pass) >= 5
    examples = json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]
    intents = {e["intent"] for e in examples}
    entity_values = {(x["entity"], x["value"]) for e in examples for x in e["entities"]}
    for item in p.must_pass:
        assert item.intent in intents, item
        for entity in item.entities or ():
            assert entity in entity_values, (item.text, entity)
    assert any(item.entities for item in p.must_pass)
    json.dumps(p.to_dict())  # the report can carry it


def test_full_policy_is_read(tmp_path):
    write(tmp_path, "- {text: hi, intent: greet}\n- {text: 'a large pizza', intent: order_pizza, "
                    "entities: [{entity: size, value: large}]}\n", "mp.yml")
    p = pol.load_policy(write(tmp_path, """
min_intent_f1: 0.7
non_inferiority_margin: 0.02
significance: {test: mcnemar, alpha: 0.01, direction: better}
bootstrap: {resamples: 500, seed: 7, gate: true, confidence: 0.9}
per_intent_max_drop: 0.2
min_support: 3
entity_f1: {min: 0.6, max_drop: off}
must_pass: mp.yml
"""))
    assert p.min_intent_f1 == 0.7 and p.non_inferiority_margin == 0.02 and p.min_improvement is None
    assert p.significance == pol.Significance("mcnemar", 0.01, "better")
    assert p.bootstrap == pol.Bootstrap(500, 7, True, 0.9)
    assert (p.per_intent_max_drop, p.min_support) == (0.2, 3)
    assert p.entity_f1 == pol.EntityF1(0.6, None)
    assert [m.text for m in p.must_pass] == ["hi", "a large pizza"]
    assert p.must_pass[1].entities == (("size", "large"),) and p.must_pass[0].entities is None


@pytest.mark.parametrize("text", ["significance: off", "significance: {direction: off}", "significance: null"])
def test_significance_can_be_switched_off(tmp_path, text):
    assert pol.load_policy(write(tmp_path, text)).significance.direction == "off"


def test_checks_switch_off(tmp_path):
    p = pol.load_policy(write(tmp_path, "min_intent_f1: off\nmin_improvement: off\nper_intent_max_drop: null\n"
                                        "entity_f1: off\nbootstrap: off\nmust_pass: off\n"))
    assert (p.min_intent_f1, p.min_improvement, p.per_intent_max_drop) == (None, None, None)
    assert p.entity_f1 == pol.EntityF1(None, None) and not p.bootstrap.enabled and p.must_pass == ()


def test_must_pass_short_mapping_form(tmp_path):
    write(tmp_path, "hi: greet\nbye: goodbye\n", "mp.yml")
    p = pol.load_policy(write(tmp_path, "must_pass: mp.yml"))
    assert [(m.text, m.intent, m.entities) for m in p.must_pass] == [("hi", "greet", None), ("bye", "goodbye", None)]


BAD = [
    ("min_improvment: 0.01", ["unknown key 'min_improvment'", "did you mean 'min_improvement'"]),
    ("min_support: five", ["'min_support' must be an integer", "'five'"]),
    ("min_support: 2.5", ["'min_support' must be an integer"]),
    ("min_intent_f1: yes", ["'min_intent_f1' must be a number", "boolean"]),
    ("min_intent_f1: '0.5'", ["'min_intent_f1' must be a number", "string"]),
    ("min_intent_f1: 1.5", ["'min_intent_f1' must be in [0, 1]", "1.5"]),
    ("per_intent_max_drop: -0.1", ["'per_intent_max_drop' must be in [0, 1]"]),
    ("significance: {alpha: 0}", ["'significance.alpha' must be in (0, 1)", "got 0"]),
    ("significance: {alpha: 1}", ["'significance.alpha' must be in (0, 1)"]),
    ("significance: {alpha: 1.5}", ["'significance.alpha' must be in (0, 1)", "1.5"]),
    ("significance: {alpha: .nan}", ["'significance.alpha' must be in (0, 1)"]),
    ("significance: {direction: worse}", ["'significance.direction' must be one of better, not_worse, off"]),
    ("significance: {test: t-test}", ["'significance.test' must be one of mcnemar"]),
    ("significance: {alpah: 0.05}", ["significance: unknown key 'alpah'", "did you mean 'alpha'"]),
    ("significance: 0.05", ["'significance' must be a mapping"]),
    ("bootstrap: {resamples: 10}", ["'bootstrap.resamples' must be between 100 and"]),
    ("bootstrap: {gate: 'yes please'}", ["'bootstrap.gate' must be true or false"]),
    ("bootstrap: {seed: -1}", ["'bootstrap.seed' must be between 0 and"]),
    ("entity_f1: {min: 2}", ["'entity_f1.min' must be in [0, 1]"]),
    ("min_improvement: 0.01\nnon_inferiority_margin: 0.01", ["either 'min_improvement' or 'non_inferiority_margin'"]),
    ("must_pass: missing.yml", ["must_pass:", "missing.yml", "must-pass file not found"]),
    ("must_pass: [hi]", ["'must_pass' must be a file path"]),
    ("- min_intent_f1: 0.5", ["a policy must be a mapping", "a list"]),
    ("min_intent_f1: [0.5", ["invalid YAML at line"]),
    ("", ["policy file is empty"]),
]


@pytest.mark.parametrize("text,expected", BAD)
def test_bad_policy_gets_one_clear_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    message = error_of(path)
    assert str(path) in message
    for part in expected:
        assert part in message, message


BAD_MUST_PASS = [
    ("[]", ["must be a non-empty list"]),
    ("- hi", ["item 0 must be a mapping"]),
    ("- {text: hi}", ["item 0 ('hi'): 'intent' must be a non-empty string"]),
    ("- {intent: greet}", ["item 0: 'text' must be a non-empty string"]),
    ("- {text: hi, intent: greet, entitys: []}", ["item 0: unknown key 'entitys'", "did you mean 'entities'"]),
    ("- {text: hi, intent: greet, entities: size}", ["'entities' must be a list"]),
    ("- {text: hi, intent: greet, entities: [{entity: size}]}", ["entities[0] ('size') needs a 'value'"]),
    ("- {text: hi, intent: greet}\n- {text: hi, intent: goodbye}", ["item 1 ('hi') repeats an earlier text"]),
]


@pytest.mark.parametrize("text,expected", BAD_MUST_PASS)
def test_bad_must_pass_names_both_files(tmp_path, text, expected):
    write(tmp_path, text, "mp.yml")
    message = error_of(write(tmp_path, "must_pass: mp.yml"))
    assert str(tmp_path / "mp.yml") in message
    for part in expected:
        assert part in message, message


def test_must_pass_path_is_relative_to_the_policy_file(tmp_path, monkeypatch):
    sub = tmp_path / "conf"
    sub.mkdir()
    write(sub, "- {text: hi, intent: greet}", "mp.yml")
    monkeypatch.chdir(tmp_path)  # not the policy's folder
    policy_file = write(sub, "must_pass: mp.yml")
    assert pol.load_policy(policy_file).must_pass[0].text == "hi"


def test_missing_and_folder_policy(tmp_path):
    assert "policy file not found" in error_of(tmp_path / "nope.yml")
    (tmp_path / "dir.yml").mkdir()
    assert "is a folder" in error_of(tmp_path / "dir.yml")


def test_must_pass_intents_the_data_lacks_are_named(tmp_path):
    write(tmp_path, "- {text: hi, intent: greet}\n- {text: bye, intent: goodbye}\n- {text: x, intent: zzz}\n", "mp.yml")
    p = pol.load_policy(write(tmp_path, "must_pass: mp.yml"))
    p.check_must_pass_intents(["greet", "goodbye", "zzz", "other"])
    with pytest.raises(ConfigError) as info:
        p.check_must_pass_intents(["greet", "other"])
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "policy.yml")) and info.value.exit_code == 2
    assert "2 intent(s) the training data has no example of: goodbye, zzz (the data has 2 intents)" in message
    pol.DEFAULT.check_must_pass_intents([])  # no must-pass list: nothing to check
