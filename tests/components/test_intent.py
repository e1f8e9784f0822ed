"""LinearIntentClassifier in a real rasa_nlu Trainer/Interpreter: quality, confidences, persistence."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nlu_ci.components.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)
from nlu_ci.engine.predict import load_model, predict_each
from nlu_ci.evaluation import evaluate
from support.train import train

from .support import SAMPLE


def test_resolved_by_module_path_through_the_rasa_registry():
    from rasa_nlu import registry

    from nlu_ci.components import LeanCRFEntityExtractor, LinearIntentClassifier

    assert registry.get_component_class("nlu_ci.components.LinearIntentClassifier") is LinearIntentClassifier
    assert registry.get_component_class("nlu_ci.components.LeanCRFEntityExtractor") is LeanCRFEntityExtractor


def test_metadata_records_the_public_module_path(nlu_ci_model):
    model_dir = nlu_ci_model.model_dir
    classes = [c["class"] for c in json.loads((model_dir / "metadata.json").read_text())["pipeline"]]
    assert "nlu_ci.components.LinearIntentClassifier" in classes
    assert "nlu_ci.components.LeanCRFEntityExtractor" in classes


def test_held_out_quality_on_the_sample_data(nlu_ci_model, sample_split):
    loaded = nlu_ci_model.loaded
    _, test = sample_split
    result = evaluate(test, predict_each(loaded, [e["text"] for e in test]))
    # 60 held-out utterances; the stock SVC + CRF pipeline scores about 0.86 / 0.94 on this split
    assert result.intent_f1 >= 0.8, result.intent_f1
    assert result.entity_f1 is not None and result.entity_f1 >= 0.8, result.entity_f1


def test_full_ranking_sorted_and_confidences_sum_to_one(nlu_ci_model, sample_split):
    loaded = nlu_ci_model.loaded
    train, test = sample_split
    intents = {m.get("intent") for m in train.intent_examples}
    for example in test[:20]:
        parsed = loaded.parse(example["text"])
        ranking = parsed["intent_ranking"]
        assert {r["name"] for r in ranking} == intents
        confidences = [r["confidence"] for r in ranking]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) == pytest.approx(1.0, abs=1e-9)
        assert parsed["intent"] == ranking[0]
        assert all(type(c) is float for c in confidences)


def test_persist_load_round_trip_gives_identical_predictions_without_pickles(nlu_ci_model, sample_split):
    trained, loaded, model_dir = nlu_ci_model.trained, nlu_ci_model.loaded, nlu_ci_model.model_dir
    _, test = sample_split
    texts = [e["text"] for e in test] + ["something completely different", "?"]
    assert predict_each(trained, texts) == predict_each(loaded, texts)
    files = sorted(p.name for p in model_dir.iterdir())
    ours = [f for f in files if "LinearIntentClassifier" in f or "LeanCRFEntityExtractor" in f]
    assert ours and not [f for f in ours if f.endswith(".pkl")], files
    arrays = [f for f in files if f.endswith(".npz")]
    assert arrays
    with np.load(model_dir / arrays[0], allow_pickle=False) as npz:   # loads without pickle support
        assert npz["weights"].ndim == 2


def test_ranking_length_option_and_two_intents(tmp_path):
    from rasa_nlu.training_data import TrainingData, load_data

    data = load_data(str(SAMPLE))
    subset = TrainingData([m for m in data.training_examples if m.get("intent") in ("greet", "goodbye")])
    pipeline = [{"name": "nlu_ci.components.LinearIntentClassifier", "ranking_length": 1}]
    loaded = train(tmp_path, subset, pipeline).loaded
    parsed = loaded.parse("bye bye, see you later")
    assert parsed["intent"]["name"] == "goodbye"
    assert len(parsed["intent_ranking"]) == 1
    assert 0.5 < parsed["intent"]["confidence"] <= 1.0


def test_single_intent_is_not_trained_and_predicts_nothing(tmp_path):
    from rasa_nlu.training_data import TrainingData, load_data

    data = load_data(str(SAMPLE))
    only = TrainingData([m for m in data.training_examples if m.get("intent") == "greet"])
    loaded = train(tmp_path, only, [{"name": "nlu_ci.components.LinearIntentClassifier"}]).loaded
    parsed = loaded.parse("hello")
    assert parsed["intent"] is None and parsed["intent_ranking"] == []


def test_usable_from_a_config_file_through_nlu_ci_engine(tmp_path):
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine.training import read_config, train

    cfg = tmp_path / "nlu_config.yml"
    cfg.write_text("language: en\npipeline:\n- name: nlu_ci.components.LinearIntentClassifier\n")
    read_config(cfg)
    model = train(cfg, load_data(str(SAMPLE)), tmp_path / "models" / "m1")
    assert (model / "metadata.json").is_file()
    assert load_model(model).parse("hello there")["intent"]["name"] == "greet"


# -- calibration ---------------------------------------------------------------------------------

def test_softmax_rows_sum_to_one_and_keep_the_argmax():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 7)) * 5
    for t in (0.01, 0.3, 3.0):
        p = softmax(scores, t)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
        assert (p.argmax(axis=1) == scores.argmax(axis=1)).all()


def test_fit_temperature_finds_the_nll_minimum_of_a_grid():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, size=400)
    scores = rng.normal(size=(400, 5))
    scores[np.arange(400), y] += 1.5               # informative but noisy scores
    t = fit_temperature(scores, y)
    grid = np.exp(np.linspace(np.log(1e-3), np.log(10), 2000))
    best = grid[np.argmin([negative_log_likelihood(scores, y, g) for g in grid])]
    assert t == pytest.approx(best, rel=0.02)
    assert negative_log_likelihood(scores, y, t) <= negative_log_likelihood(scores, y, 0.1)


def test_expected_calibration_error():
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([0, 0])) == pytest.approx(0.9)


def test_a_one_example_intent_does_not_switch_calibration_off(tmp_path):
    from rasa_nlu.training_data import Message, TrainingData, load_data

    from nlu_ci.components import LinearIntentClassifier
    from nlu_ci.components.calibration import DEFAULT_TEMPERATURE

    data = load_data(str(SAMPLE))
    rare = Message("play some jazz music", {"intent": "play_music"})
    clf = LinearIntentClassifier({})
    clf.train(TrainingData(list(data.training_examples) + [rare]))
    assert "play_music" in clf.classes
    assert clf.temperature != DEFAULT_TEMPERATURE       # fitted on the intents that have enough examples
    assert 1e-3 <= clf.temperature <= 10.0


def test_transform_in_chunks_gives_the_same_matrix_as_in_one_go(sample_split):
    """``NgramFeatures.transform`` works in chunks of texts (memory at 100k examples); each row is the same."""
    from nlu_ci.components.ngrams import NgramFeatures

    train_data, test = sample_split
    texts = [m.text for m in train_data.training_examples] + [e["text"] for e in test] + ["", "!!"]
    features = NgramFeatures(char_ngrams=(3, 5)).fit(texts[:-40])
    whole, chunked = features.transform(texts, chunk=len(texts)), features.transform(texts, chunk=7)
    assert whole.shape == chunked.shape and whole.nnz == chunked.nnz > 0
    assert (whole.indptr == chunked.indptr).all() and (whole.indices == chunked.indices).all()
    assert (whole.data == chunked.data).all()
    assert whole.indices.dtype == chunked.indices.dtype and whole.indptr.dtype == chunked.indptr.dtype


def _tfidf_reference(texts, options):
    """scikit-learn's TfidfVectorizer.fit on all the texts at once, as NgramFeatures configures it."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from nlu_ci.components.ngrams import WORD_PATTERN

    out = []
    for analyzer, ngrams in (("word", (1, 2)), ("char_wb", (3, 5))):
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, min_df=options.get("min_df", 2),
                              max_features=options.get("max_features"), sublinear_tf=True, lowercase=True,
                              token_pattern=WORD_PATTERN if analyzer == "word" else None, dtype=np.float64)
        vec.fit(texts)
        out.append((sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__), np.asarray(vec.idf_)))
    return out


@pytest.mark.parametrize("options", [{}, {"max_features": 300}, {"min_df": 1}, {"min_df": 3, "max_features": 2000}])
def test_vocabulary_learnt_in_chunks_is_scikit_learns_in_one_go(options):
    """``NgramFeatures.fit`` counts ``chunk`` texts at a time (memory at 100k: 160 -> 29 MB over the start in
    one process): the same terms in the same order and bit-identical IDF weights as scikit-learn's
    TfidfVectorizer on all the texts, whatever the chunk; chunks of only punctuation or repeated texts included."""
    from nlu_ci.components.ngrams import NgramFeatures
    from support import growth

    if growth.available():
        texts = [e["text"] for e in json.loads(growth.HWU64.read_text())["rasa_nlu_data"]["common_examples"]][:3000]
    else:
        texts = [e["text"] for e in json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]] * 3
    texts += ["!!", "?", "..."] * 5 + texts[:40] + ["ΟΔΟΣ οδός İstanbul", "wake\u00a0me  up\t7am", "a b c"]
    (word_vocabulary, word_idf), (char_vocabulary, char_idf) = _tfidf_reference(texts, options)
    for chunk in (7, 15, 1000, len(texts), 16384):
        parts = NgramFeatures(char_ngrams=(3, 5), **options).fit(texts, chunk=chunk)
        assert parts.word_vocabulary == word_vocabulary and parts.char_vocabulary == char_vocabulary
        assert np.array_equal(parts.word_idf, word_idf) and np.array_equal(parts.char_idf, char_idf)
    assert len(char_vocabulary) > 100
    if "max_features" in options:
        assert len(char_vocabulary) == options["max_features"]


def test_a_vocabulary_of_only_punctuation_is_empty_in_chunks_too():
    from nlu_ci.components.ngrams import NgramFeatures

    for chunk in (2, 100):
        f = NgramFeatures(char_ngrams=(3, 5)).fit(["!!", "?", ".", "!!"] * 3, chunk=chunk)
        assert f.word_vocabulary == [] and len(f.word_idf) == 0
