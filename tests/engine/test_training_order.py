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


def test_training_without_rasas_deepcopy_writes_the_same_files_and_leaves_the_data_as_it_was(tmp_path):
    """``train_pipeline`` is rasa_nlu's ``Trainer.train`` on ``working_copy`` instead of a deep copy of the
    data (memory at 100k): the same model files, and the caller's messages never get tokens or features."""
    from rasa_nlu.model import Trainer
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine.training import train_pipeline

    cfg, _ = read_config(ROOT / "nlu_config.yml")
    data = load_data(str(SAMPLE))
    regexes = len(data.regex_features)
    ours, rasas = Trainer(cfg), Trainer(cfg)
    train_pipeline(ours, data)
    assert all(set(m.data) <= {"intent", "entities"} for m in data.training_examples)
    assert len(data.regex_features) == regexes
    rasas.train(data)
    a = ours.persist(str(tmp_path), project_name="", fixed_model_name="ours")
    b = rasas.persist(str(tmp_path), project_name="", fixed_model_name="rasas")
    names = sorted(p.name for p in (tmp_path / "ours").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "rasas").iterdir()) and "training_data.json" in names
    for name in names:
        if name != "metadata.json":  # its trained_at differs
            assert (tmp_path / "ours" / name).read_bytes() == (tmp_path / "rasas" / name).read_bytes(), name
    assert a != b



def test_the_same_data_gives_the_same_model_whatever_the_processs_random_state(tmp_path):
    """rasa_nlu's SklearnIntentClassifier fits ``SVC(probability=True)`` with no ``random_state``: libsvm's
    Platt scaling then draws from numpy's global generator, which a forked training child inherits from
    whatever ran before it (a fresh process: OS entropy). Training seeds it, so the confidences (and the
    argmax of them, which is the intent) are the same every time (CI found a gate test judged by them)."""
    import numpy as np

    from support.data import FAST_CONFIG

    config = tmp_path / "config.yml"
    config.write_text(FAST_CONFIG)
    runs = []
    for seed in (1, 2):
        np.random.seed(seed)
        random.seed(seed)
        runs.append(_predictions(train(config, _shuffled(1), tmp_path / f"m{seed}")))
    assert runs[0] == runs[1]
    state = np.random.get_state()[1].copy()
    train(config, _shuffled(1), tmp_path / "in-process-state")
    assert (np.random.get_state()[1] == state).all()  # the caller's generator is left as it was


def test_what_no_later_component_reads_is_dropped_from_the_working_copy_only():
    """engine.training.drop_unread: once every component still to train says what it reads, the working
    copy's tokens and text features go (memory under the intent fit); a stock component that says nothing
    (CountVectorsFeaturizer reads tokens without requiring them) keeps everything."""
    from rasa_nlu.model import Trainer
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine.training import drop_unread, working_copy

    cfg, _ = read_config(ROOT / "nlu_config.yml")
    pipeline = Trainer(cfg).pipeline
    names = [type(c).__name__ for c in pipeline]
    data = load_data(str(SAMPLE))
    working = working_copy(data)
    for component in pipeline[:2]:                  # tokenizer, regex featurizer
        component.train(working, cfg)
    keys = lambda: set().union(*(m.data for m in working.training_examples))  # noqa: E731
    assert {"tokens", "text_features"} <= keys()
    drop_unread(working, pipeline[1:])              # the regex featurizer says nothing: all kept
    assert {"tokens", "text_features"} <= keys()
    drop_unread(working, pipeline[names.index("LeanCRFEntityExtractor"):])
    assert "tokens" in keys() and "text_features" not in keys()
    classic, _ = read_config(ROOT / "configs" / "rasa_classic.yml")
    drop_unread(working, pipeline[names.index("EntitySynonymMapper"):] + Trainer(classic).pipeline[-2:])
    assert "tokens" in keys()
    drop_unread(working, pipeline[names.index("EntitySynonymMapper"):])
    assert keys() == {"intent", "entities"} and {"intent", "entities"} <= set().union(*(m.data for m in working.training_examples))
    assert all("tokens" not in m.data for m in data.training_examples)  # the caller's data was never touched
    assert any(m.get("entities") for m in working.training_examples)


def _trainer_with(overlap: int):
    from rasa_nlu.model import Trainer

    cfg, _ = read_config(ROOT / "nlu_config.yml")
    trainer = Trainer(cfg)
    (crf,) = [c for c in trainer.pipeline if type(c).__name__ == "LeanCRFEntityExtractor"]
    crf.component_config["overlap_max_examples"] = overlap
    return trainer, crf


def test_the_crf_fits_beside_the_intent_fit_and_give_the_model_of_one_after_the_other(monkeypatch):
    """``overlap_max_examples``: up to that many examples the CRF's ``train`` leaves its fits running
    (``child.start``) while the intent classifier trains; ``train_pipeline`` finishes them. The same model
    files either way (every fit is seeded)."""
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine import training
    from nlu_ci.engine.training import train_pipeline

    seen = []
    real_train = training._train_step

    def watching(component):
        step = real_train(component)
        def run(*args, **kwargs):   # what the CRF left running when the next component starts
            seen.append((type(component).__name__, [c._training is not None for c in trainer.pipeline
                                                    if hasattr(c, "_training")]))
            return step(*args, **kwargs)
        return run

    cpus.set_workers(2)
    try:
        models = {}
        for overlap in (0, 100_000):
            trainer, crf = _trainer_with(overlap)
            seen.clear()
            monkeypatch.setattr(training, "_train_step", watching)
            train_pipeline(trainer, load_data(str(SAMPLE)))
            monkeypatch.undo()
            assert crf._training is None and crf.model
            models[overlap] = (crf.model, crf.calibrator.__dict__, dict(seen))
    finally:
        cpus.set_workers(0)
    assert models[0][2]["LinearIntentClassifier"] == [False]
    assert models[100_000][2]["LinearIntentClassifier"] == [True]      # the CRF's fits were still running
    assert models[0][:2] == models[100_000][:2]


def test_a_failure_after_the_crf_kills_the_fits_it_left_running(monkeypatch):
    from rasa_nlu.training_data import load_data

    from nlu_ci.components.intent import LinearIntentClassifier
    from nlu_ci.engine import child
    from nlu_ci.engine.training import train_pipeline

    started = []
    real_start = child.start
    monkeypatch.setattr(child, "start", lambda fn, what: started.append(real_start(fn, what)) or started[-1])

    def fails(self, *args, **kwargs):
        raise ValueError("intent fit failed")

    monkeypatch.setattr(LinearIntentClassifier, "train", fails)
    cpus.set_workers(2)
    try:
        trainer, crf = _trainer_with(100_000)
        with pytest.raises(ValueError, match="intent fit failed"):
            train_pipeline(trainer, load_data(str(SAMPLE)))
    finally:
        cpus.set_workers(0)
    (entity_fits,) = started
    assert entity_fits.what == "entity training" and entity_fits._pid == 0   # stopped: killed and reaped
    assert crf._training is None
