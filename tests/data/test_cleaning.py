"""Tolerant, visible cleaning: SNIPS-like glitches train with listed repairs; many broken examples fail (exit 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu_ci.data import dataset, notes_of
from nlu_ci.data.cleaning import MAX_REPAIR_SHARE
from nlu_ci.errors import DataError
from support.data import load_sample, write_data

EX = load_sample()["rasa_nlu_data"]["common_examples"]
TRAILING = {"text": "I want a large pizza please", "intent": "order_pizza",   # 'large ' (SNIPS: 'in a year ')
            "entities": [{"start": 9, "end": 15, "value": "large ", "entity": "size"}]}
GLUED = {"text": "one largepizza with ham please", "intent": "order_pizza",  # SNIPS: 'one pm' in 'one pmnear'
         "entities": [{"start": 4, "end": 9, "value": "large", "entity": "size"},
                      {"start": 20, "end": 23, "value": "ham", "entity": "topping"}]}


def broken(n: int) -> list[dict]:
    return [{"text": f"a hugepizza number {i} please", "intent": "order_pizza",
             "entities": [{"start": 2, "end": 6, "value": "huge", "entity": "size"}]} for i in range(n)]


def test_trailing_space_is_trimmed_and_glued_span_dropped(tmp_path):
    data = dataset.load_training_data(write_data(tmp_path / "d.json", EX + [TRAILING, GLUED]))
    examples = {m.text: m for m in data.training_examples}
    assert examples[TRAILING["text"]].get("entities") == [{"start": 9, "end": 14, "value": "large", "entity": "size"}]
    assert examples[GLUED["text"]].get("intent") == "order_pizza"  # the example stays, only the bad span goes
    assert [e["entity"] for e in examples[GLUED["text"]].get("entities")] == ["topping"]
    repairs = notes_of(data).repairs
    assert [(r["action"], r["example"], r["entity"]) for r in repairs] == [("trimmed", 240, "size"),
                                                                          ("dropped", 241, "size")]
    assert "inside a word" in repairs[1]["reason"] and "whitespace" in repairs[0]["reason"]


@pytest.mark.parametrize("entity, reason", [
    ({"start": 0, "end": 99, "entity": "size"}, "do not fit the text"),
    ({"start": 3, "end": 3, "entity": "size"}, "do not fit the text"),
    ({"start": 1, "end": 2, "entity": "size"}, "only whitespace"),
    ({"start": 0, "end": 1, "entity": ""}, "no entity name"),
])
def test_other_bad_spans_are_dropped(tmp_path, entity, reason):
    data = dataset.load_training_data(write_data(tmp_path / "d.json", EX + [
        {"text": "a  pizza", "intent": "order_pizza", "entities": [entity]}]))
    (repair,) = notes_of(data).repairs
    assert repair["action"] == "dropped" and reason in repair["reason"]


def test_above_the_share_the_data_is_refused_naming_the_first_offenders(tmp_path):
    n = int(len(EX) * 0.05)
    path = write_data(tmp_path / "d.json", EX + broken(n))
    with pytest.raises(DataError) as err:
        dataset.load_training_data(path)
    message = str(err.value)
    assert f"{n} of {len(EX) + n} examples" in message and "above the limit of 1.0%" in message
    assert "example 240 ('a hugepizza number 0 please'): entity 'size'" in message
    assert "NLU_CI_MAX_REPAIR_SHARE" in message
    assert len(notes_of(dataset.load_training_data(path, max_repair_share=0.06)).repairs) == n
    # exactly at the limit passes: 1 % of 300 examples
    at_limit = EX + [dict(e, text=e["text"] + " ok") for e in EX[:57]] + broken(3)
    assert len(at_limit) == 300 and MAX_REPAIR_SHARE == 0.01
    assert len(notes_of(dataset.load_training_data(write_data(tmp_path / "l.json", at_limit))).repairs) == 3


def test_run_trains_through_glitches_and_lists_every_repair(cli, tmp_path):
    path = write_data(tmp_path / "glitches.json", EX + [TRAILING, GLUED])
    r = cli(["run", "--data", str(path), "--json"])
    assert r.code == 0, r.output
    report = r.json
    assert report["outcome"] == "promoted"
    data = report["data"]
    assert data["repaired_examples"] == 2
    assert [(x["action"], x["entity"]) for x in data["repairs"]] == [("trimmed", "size"), ("dropped", "size")]
    assert any(w.startswith("data check entity_repairs: 2 examples") for w in report["warnings"]), report["warnings"]
    assert "validate" in report["durations"]
    assert "nlu_ci_data_repaired_examples 2.0" in (cli.store / "metrics.prom").read_text()
    # the model learned the repaired annotations: rasa_nlu's own copy of its training data
    model = cli.store / report["candidate"]["model"]
    trained = {e["text"]: e for e in json.loads((model / "training_data.json").read_text())["rasa_nlu_data"]
               ["common_examples"]}
    assert trained[TRAILING["text"]]["entities"][0]["end"] == 14
    assert [e["entity"] for e in trained[GLUED["text"]]["entities"]] == ["topping"]


def test_run_with_five_percent_broken_fails_with_exit_2(cli, tmp_path):
    path = write_data(tmp_path / "broken.json", EX + broken(13))
    r = cli(["run", "--data", str(path), "--json"])
    assert r.code == 2, r.output
    assert r.json["outcome"] == "failed"
    assert "13 of 253 examples (5.1%) needed entity repairs" in r.json["error"]
    assert "hugepizza number 0" in r.json["error"]


def test_test_data_follows_the_same_rules(cli, tmp_path):
    test = [dict(e, text=e["text"] + " today") for e in EX[:19]] + [dict(TRAILING, text="a large pizza now",
           entities=[{"start": 1, "end": 7, "value": " large", "entity": "size"}])]
    test_path = write_data(tmp_path / "test.json", test)
    r = cli(["run", "--data", str(write_data(tmp_path / "train.json", EX)), "--test-data", str(test_path), "--json"])
    assert r.code == 2, r.output
    assert "test.json: 1 of 20 examples (5.0%)" in r.json["error"]
    r = cli(["run", "--data", str(tmp_path / "train.json"), "--test-data", str(test_path), "--json"],
            NLU_CI_MAX_REPAIR_SHARE="0.1")
    assert r.code == 0, r.output
    (repair,) = r.json["data"]["test_repairs"]
    assert repair["action"] == "trimmed" and repair["where"] == str(test_path)
    assert r.json["data"]["repaired_examples"] == 1


def test_bad_share_setting_is_a_usage_error(cli, tmp_path):
    r = cli(["run", "--data", str(Path(tmp_path)), "--max-repair-share", "2"])
    assert r.code == 2 and "NLU_CI_MAX_REPAIR_SHARE" in r.stderr
