"""Helpers for the component tests: real rasa_nlu training on the bundled sample data (~1 s a model)."""
from __future__ import annotations

import random
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "nlu.json"

NLU_CI_PIPELINE = [
    {"name": "tokenizer_whitespace"},
    {"name": "RegexFeaturizer"},
    {"name": "nlu_ci.components.LinearIntentClassifier"},
    {"name": "nlu_ci.components.LeanCRFEntityExtractor"},
    {"name": "EntitySynonymMapper"},
]


def rasa_config(pipeline: list[dict]):
    from rasa_nlu import config as rasa_config

    return rasa_config.RasaNLUModelConfig({"language": "en", "pipeline": [dict(c) for c in pipeline]})


def split_sample(fraction: float = 0.25, seed: int = 7):
    """(train TrainingData, test examples as dicts): a fixed random hold-out of the sample data."""
    from rasa_nlu.training_data import TrainingData, load_data

    data = load_data(str(SAMPLE))
    examples = list(data.training_examples)
    random.Random(seed).shuffle(examples)
    cut = int(len(examples) * fraction)
    test, train = examples[:cut], examples[cut:]
    train_data = TrainingData(train, entity_synonyms=data.entity_synonyms, regex_features=data.regex_features)
    test_examples = [{"text": m.text, "intent": m.get("intent"), "entities": m.get("entities", [])} for m in test]
    return train_data, test_examples


def train_and_load(pipeline: list[dict], training_data, tmp_path: Path):
    """(in-memory trained Interpreter, Interpreter loaded back from the persisted model, model dir)."""
    from rasa_nlu.model import Interpreter, Trainer

    trainer = Trainer(rasa_config(pipeline))
    trained = trainer.train(training_data)
    model_dir = trainer.persist(str(tmp_path), fixed_model_name="model")
    return trained, Interpreter.load(model_dir), Path(model_dir)


