"""Helpers for the component tests: the project's pipeline and a fixed hold-out of the sample data
(training: ``support.train``)."""
from __future__ import annotations

import random

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from support.data import SAMPLE

NLU_CI_PIPELINE = [
    {"name": "tokenizer_whitespace"},
    {"name": "RegexFeaturizer"},
    {"name": "nlu_ci.components.LinearIntentClassifier"},
    {"name": "nlu_ci.components.LeanCRFEntityExtractor"},
    {"name": "EntitySynonymMapper"},
]


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
