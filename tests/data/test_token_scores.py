"""Token-level entity scores: nlu-ci's numbers equal rasa_nlu.test's own on real trained models."""
from __future__ import annotations

from pathlib import Path

import pytest

from nlu_ci.data import dataset
from nlu_ci.engine.model import Model
from nlu_ci.engine.training import train
from nlu_ci.entity_tokens import token_label, token_scores
from support.data import CONFIG, FAST_CONFIG, SAMPLE


def rasa_nlu_token_metrics(interpreter, test: list[dict]) -> dict:
    """rasa_nlu 0.15's own entity evaluation (the functions `python -m rasa_nlu.test` runs)."""
    import importlib

    from rasa_nlu.training_data import Message, TrainingData

    rasa_test = importlib.import_module("rasa_nlu.test")  # the module (rasa_nlu.test is also a function)
    corpus = TrainingData([Message(e["text"], {"intent": e["intent"], "entities": e["entities"]}) for e in test])
    _, entity_predictions, tokens = rasa_test.get_predictions(interpreter, corpus,
                                                              rasa_test.get_intent_targets(corpus))
    results = rasa_test._compute_entity_metrics(entity_predictions, tokens, interpreter, corpus)
    assert len(results) == 1, results  # one entity extractor in these pipelines
    (metrics,) = results.values()
    return {"f1": metrics["F1-score"][0], "precision": metrics["Precision"][0], "accuracy": metrics["Accuracy"][0]}


@pytest.mark.parametrize("config", ["fast", "shipped"])
def test_token_scores_equal_rasa_nlu_test(tmp_path: Path, config: str):
    path = CONFIG
    if config == "fast":
        path = tmp_path / "fast.yml"
        path.write_text(FAST_CONFIG)
    data = dataset.load_training_data(SAMPLE)
    split = dataset.hash_split(data, 0.3, "token-test")
    model = Model(train(path, split.train, tmp_path / "model"))
    ours = model.evaluate(split.test)
    theirs = rasa_nlu_token_metrics(model.interpreter, split.test)
    assert ours.entity_token_f1 == pytest.approx(theirs["f1"], abs=1e-12)
    assert ours.entity_token_precision == pytest.approx(theirs["precision"], abs=1e-12)
    assert ours.entity_token_accuracy == pytest.approx(theirs["accuracy"], abs=1e-12)
    # both kinds are reported, and they are different numbers (no_entity tokens dominate the token-level ones)
    summary = ours.summary()
    assert summary["entity_token_f1"] == ours.entity_token_f1 and summary["entity_f1"] == ours.entity_f1
    assert ours.entity_token_f1 != ours.entity_f1


def test_token_labels_follow_rasa_nlu_rules():
    city = {"start": 5, "end": 11, "entity": "city"}
    date = {"start": 9, "end": 20, "entity": "date"}
    assert token_label((0, 4), [city]) == "no_entity"
    assert token_label((5, 11), [city]) == "city"
    assert token_label((10, 14), [city]) == "city"          # a token crossing the border counts
    assert token_label((9, 14), [city, date]) == "date"     # most shared characters wins
    assert token_label((8, 12), [city, date]) == "city"     # a tie: the first, as numpy.argmax
    assert token_scores([[]], [[]], [[(0, 4)]]) is None
    perfect = token_scores([[city]], [[city]], [[(0, 4), (5, 11)]])
    assert perfect == {"precision": 1.0, "f1": 1.0, "accuracy": 1.0}
    missed = token_scores([[city]], [[]], [[(0, 4), (5, 11)]])
    assert missed["accuracy"] == 0.5
