"""Batched prediction (nlu_ci.engine.batch) gives exactly what per-message parse gives."""
from __future__ import annotations

import pytest

from nlu_ci.engine import batch
from nlu_ci.engine.predict import predict, predict_each
from support.train import train

EXTRA = ["", "   ", "?", "family size pizza for 3 people at 7pm", "HELLO THERE!!!", "ünïcödé wörds ok"]

CLASSIC = [{"name": "tokenizer_whitespace"}, {"name": "RegexFeaturizer"}, {"name": "CountVectorsFeaturizer"},
           {"name": "SklearnIntentClassifier", "C": [1, 10]}, {"name": "CRFEntityExtractor"},
           {"name": "EntitySynonymMapper"}]


def texts_of(test):
    return [e["text"] for e in test] + EXTRA


def test_nlu_ci_pipeline_batched_equals_per_message(nlu_ci_model, sample_split):
    loaded = nlu_ci_model.loaded
    texts = texts_of(sample_split[1])
    batched = batch.predict_batch(loaded, texts)
    assert batched is not None
    assert batched == predict_each(loaded, texts)
    assert [p["text"] for p in batched] == texts
    assert any(p["entities"] for p in batched) and all(p["intent_ranking"] for p in batched if p["text"].strip())


def test_synonyms_are_applied_in_the_batch_path(nlu_ci_model):
    loaded = nlu_ci_model.loaded
    text = "a family size pizza please"
    (one,) = batch.predict_batch(loaded, [text])
    assert one == predict_each(loaded, [text])[0]
    assert [(e["value"], e["start"], e["end"]) for e in one["entities"] if e["entity"] == "size"] == [("large", 2, 13)]


def test_classic_rasa_pipeline_batched_equals_per_message(sample_split, tmp_path):
    train_data, test = sample_split
    loaded = train(tmp_path, train_data, CLASSIC).loaded
    texts = texts_of(test)
    batched = batch.predict_batch(loaded, texts)
    assert batched is not None and batched == predict_each(loaded, texts)


def test_unknown_component_means_no_batch_and_predict_falls_back(nlu_ci_model, sample_split):
    """With a component batch.py does not know, ``predict`` runs the whole pipeline once per utterance
    (the user's component included) and still gives what the batch path gives without it."""
    loaded = nlu_ci_model.loaded
    texts = texts_of(sample_split[1])[:10]
    batched = batch.predict_batch(loaded, texts)  # the batch path, before the unknown component is added
    assert batched is not None

    class Shout:                       # a user's component that batch.py knows nothing about
        name = "Shout"
        calls: list[str] = []

        def process(self, message, **kwargs):
            Shout.calls.append(message.text)
            message.set("shout", message.text.upper(), add_to_output=True)

    loaded.pipeline.append(Shout())
    try:
        assert not batch.supports_batch(loaded)
        assert batch.predict_batch(loaded, texts) is None
        assert Shout.calls == []
        assert predict(loaded, texts) == batched  # per-message parse == batch, whatever path gave each
        assert Shout.calls == texts  # ... and it was the per-message path: the component ran for each text
    finally:
        loaded.pipeline.pop()
    assert batch.supports_batch(loaded)


@pytest.mark.parametrize("texts", [[], [""], ["hi"]])
def test_tiny_inputs(nlu_ci_model, texts):
    loaded = nlu_ci_model.loaded
    assert batch.predict_batch(loaded, texts) == predict_each(loaded, texts)
