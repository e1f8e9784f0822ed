"""The benchmark's synthetic scale-up keeps annotations right, and its time-cap extrapolation is sound."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("run_bench", ROOT / "bench" / "run_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_examples_keep_entity_offsets_and_intents(bench):
    import json

    examples = json.loads((ROOT / "data" / "sample" / "nlu.json").read_text())["rasa_nlu_data"]["common_examples"]
    out = bench.synthesise(examples, 2000, seed=3)
    assert len(out) == 2000 and out[: len(examples)] == examples
    values = {}
    for e in examples:
        for ent in e["entities"]:
            values.setdefault(ent["entity"], set()).add(e["text"][ent["start"]:ent["end"]])
    intents = {e["intent"] for e in examples}
    changed = 0
    for e in out[len(examples):]:
        assert e["intent"] in intents
        for ent in e["entities"]:
            assert e["text"][ent["start"]:ent["end"]] == ent["value"]
            assert ent["value"] in values[ent["entity"]]
        changed += e["text"] not in {x["text"] for x in examples[:50]}
    assert changed > 1000


def test_power_law_extrapolation(bench):
    points = [(1000, 2.0), (2000, 8.0)]                 # t ~ n^2
    assert bench.predicted_seconds(points, 4000) == pytest.approx(32.0)
    assert bench.predicted_seconds(points[:1], 4000) is None


def test_the_benchs_training_files_carry_the_datasets_regex_features(bench, tmp_path):
    """A team's file has its patterns; the bench's subsamples and scale-ups train on them too."""
    import json

    dataset = tmp_path / "set"
    dataset.mkdir()
    doc = json.loads((ROOT / "data" / "sample" / "nlu.json").read_text())["rasa_nlu_data"]
    assert doc["regex_features"]
    (dataset / "train.json").write_text(json.dumps({"rasa_nlu_data": doc}))
    n = len(doc["common_examples"])
    files = bench.prepare_data(dataset, tmp_path / "work", [n // 2, n * 3])
    for size, path in files.items():
        out = json.loads(path.read_text())["rasa_nlu_data"]
        assert len(out["common_examples"]) == size
        assert out["regex_features"] == doc["regex_features"]
        assert out.get("entity_synonyms") == (doc.get("entity_synonyms") or None)
