"""The same data gives the same model whatever order its examples arrive in (engine.training.canonical_order),
and the parallel calibration folds give the same model as serial ones."""
from __future__ import annotations

import random

import pytest

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci import cpus
from nlu_ci.engine.model import Model
from nlu_ci.engine.training import read_config, train
from support.data import ROOT, SAMPLE


def _shuffled(seed: int):
    from rasa_nlu.training_data import TrainingData, load_data

    data = load_data(str(SAMPLE))
    examples = list(data.training_examples)
    random.Random(seed).shuffle(examples)
    return TrainingData(examples, entity_synonyms=data.entity_synonyms, regex_features=data.regex_features)


def _predictions(path):
    texts = [m.text for m in _shuffled(0).training_examples][:80] + ["large pepperoni to berlin tomorrow"]
    return Model(path).predict(texts)


@pytest.fixture(scope="module")
def config():
    return read_config(ROOT / "nlu_config.yml")[0]


def test_two_orders_of_the_same_examples_give_the_same_model(tmp_path, config):
    a = train(ROOT / "nlu_config.yml", _shuffled(1), tmp_path / "a", config)
    b = train(ROOT / "nlu_config.yml", _shuffled(2), tmp_path / "b", config)
    pa, pb = _predictions(a), _predictions(b)
    assert any(p["entities"] for p in pa)  # the comparison covers the CRF, not only intents
    assert pa == pb


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_calibration_folds_give_the_serial_model(tmp_path, config, workers):
    try:
        cpus.set_workers(1)
        serial = _predictions(train(ROOT / "nlu_config.yml", _shuffled(1), tmp_path / "serial", config))
        cpus.set_workers(workers)
        parallel = _predictions(train(ROOT / "nlu_config.yml", _shuffled(1), tmp_path / "parallel", config))
    finally:
        cpus.set_workers(0)
    assert serial == parallel
