"""Entity confidences that mean something: LeanCRFEntityExtractor's raw score (the smallest token marginal)
calibrated on out-of-fold entities into P(entity correct), persisted with the model."""
from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from nlu_ci.components.calibration import ScoreCalibrator, expected_calibration_error
from nlu_ci.engine.predict import predict_each
from support.train import train

from .support import NLU_CI_PIPELINE


def flat_scores(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores squeezed into 0.1-0.2 (like the pa trainer's marginals) whose true P(correct) rises from 0.3 to 0.95."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.1, 0.2, n)
    p = 0.3 + 0.65 * (s - 0.1) / 0.1
    return s, rng.uniform(size=n) < p


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_turns_flat_scores_into_probabilities(method):
    s, ok = flat_scores()
    raw_ece = expected_calibration_error(s, ok)
    cal = ScoreCalibrator.fit(method, s, ok)
    test_s, test_ok = flat_scores(seed=1)
    calibrated = cal(test_s)
    assert raw_ece > 0.4                                   # the raw scores say 0.15 where 60 % are right
    assert expected_calibration_error(calibrated, test_ok) < 0.05
    assert np.all(np.diff(calibrated[np.argsort(test_s)]) >= -1e-12)   # monotone: the ranking is kept
    assert 0.0 <= calibrated.min() and calibrated.max() <= 1.0
    again = ScoreCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert np.allclose(again(test_s), calibrated)


def test_one_class_gives_the_observed_rate_and_none_is_the_identity():
    cal = ScoreCalibrator.fit("platt", np.array([0.1, 0.2, 0.15]), np.array([True, True, True]))
    assert cal(np.array([0.1]))[0] > 0.99
    assert np.allclose(ScoreCalibrator("none")(np.array([0.12, 0.5])), [0.12, 0.5])
    with pytest.raises(ValueError, match="calibration must be one of"):
        ScoreCalibrator("temperature")


def test_out_of_fold_needs_two_folds_and_enough_sequences():
    import pycrfsuite

    from nlu_ci.components.entity_folds import out_of_fold

    seqs = [([["w=a"], ["w=b"]], ["B-x", "O"])] * 3
    s, ok = out_of_fold(seqs, lambda: pycrfsuite.Trainer(verbose=False), folds=1, sample=0)
    assert s.size == ok.size == 0
    s, ok = out_of_fold(seqs, lambda: pycrfsuite.Trainer(verbose=False), folds=3, sample=0)
    assert s.size == ok.size == 3 and ok.all()   # each held-out sequence predicts its one entity, correctly


def entity_confidences(interpreter, test: list[dict]) -> tuple[list[float], list[bool]]:
    conf, ok = [], []
    for example, prediction in zip(test, predict_each(interpreter, [e["text"] for e in test]), strict=True):
        gold = {(e["start"], e["end"], e["entity"]) for e in example["entities"]}
        for e in prediction["entities"]:
            if "confidence" in e:
                conf.append(e["confidence"])
                ok.append((e["start"], e["end"], e["entity"]) in gold)
    return conf, ok


def test_the_extractor_persists_its_calibration_and_correct_entities_get_high_confidence(
        nlu_ci_model, sample_split, tmp_path):
    trained, loaded, model_dir = nlu_ci_model.trained, nlu_ci_model.loaded, nlu_ci_model.model_dir
    _, test = sample_split
    meta = json.loads((model_dir / "metadata.json").read_text())
    [component] = [c for c in meta["pipeline"] if c["class"] == "nlu_ci.components.LeanCRFEntityExtractor"]
    assert component["calibration"] == "platt" and component["calibrator"]["method"] == "platt"
    assert set(component["calibrator"]) == {"method", "a", "b"}
    conf, ok = entity_confidences(loaded, test)
    assert conf == entity_confidences(trained, test)[0]     # reloaded: the same calibrated confidences
    assert sum(ok) >= 10 and statistics.median(c for c, good in zip(conf, ok, strict=True) if good) >= 0.5

    # the same model with its raw scores: same entities, lower and worse-calibrated confidences
    [extractor] = [c for c in loaded.pipeline if type(c).__name__ == "LeanCRFEntityExtractor"]
    calibrator, extractor.calibrator = extractor.calibrator, ScoreCalibrator("none")
    try:
        raw_conf, raw_ok = entity_confidences(loaded, test)
    finally:
        extractor.calibrator = calibrator
    assert raw_ok == ok
    assert statistics.median(raw_conf) < 0.5 < statistics.median(conf)
    assert expected_calibration_error(conf, ok) < expected_calibration_error(raw_conf, raw_ok)


def test_calibration_none_keeps_the_raw_score(sample_split, tmp_path):
    train_data, test = sample_split
    pipeline = [dict(c, calibration="none") if c["name"].endswith("LeanCRFEntityExtractor") else c
                for c in NLU_CI_PIPELINE]
    trained = train(tmp_path, train_data, pipeline)
    loaded, model_dir = trained.loaded, trained.model_dir
    meta = json.loads((model_dir / "metadata.json").read_text())
    [component] = [c for c in meta["pipeline"] if c["class"] == "nlu_ci.components.LeanCRFEntityExtractor"]
    assert component["calibrator"] == {"method": "none"}
    conf, _ = entity_confidences(loaded, test)
    assert conf and max(conf) <= 1.0


def test_features_built_as_they_go_give_the_model_of_all_sequences_at_once(sample_split, tmp_path):
    """``train`` hands each sequence to crfsuite as it builds it and keeps only the calibration folds' ones
    (memory at 100k examples): the CRF file and the calibration are those of the list of every sequence."""
    import pycrfsuite
    from rasa_nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    from nlu_ci.components.entities import LeanCRFEntityExtractor, token_features
    from nlu_ci.components.entity_folds import out_of_fold
    from nlu_ci.components.tagging import seed_crfsuite, tags_from_entities

    train_data, _ = sample_split
    WhitespaceTokenizer().train(train_data, None)
    extractor = LeanCRFEntityExtractor({"calibration_sample": 60})
    extractor.train(train_data)
    scheme = extractor.component_config["tagging"]
    sequences = [(token_features(m.get("tokens")), tags_from_entities(m.get("tokens"), m.get("entities", []), scheme)[0])
                 for m in extractor.filter_trainable_entities(train_data.training_examples) if m.get("tokens")]
    assert len(sequences) > 60
    trainer = pycrfsuite.Trainer(algorithm="pa", verbose=False)
    trainer.set_params({"max_iterations": 10})
    for features, tags in sequences:
        trainer.append(features, tags)
    seed_crfsuite(0)
    trainer.train(str(tmp_path / "all.crfsuite"))
    assert (tmp_path / "all.crfsuite").read_bytes() == extractor.model
    scores, correct = out_of_fold(sequences, extractor._trainer, 3, 60, 0)
    assert scores.size >= 10
    assert extractor.calibrator.to_dict() == ScoreCalibrator.fit("platt", scores, correct).to_dict()
