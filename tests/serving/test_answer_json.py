"""``answer_json.dumps`` writes what rasa_nlu's ``json_to_string`` writes, character for character: on real parse
answers of a trained model and on values a plain walk could get wrong (numbers, escapes, empties, subclasses)."""
from __future__ import annotations

import enum
import math

import numpy as np
import pytest
from rasa_nlu.utils import json_to_string

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.serving import answer_json


class Level(enum.IntEnum):
    LOW = 1


class Ranking(list):
    pass


ODD = [
    {}, [], (), "", 0, -0.0, 1e300, 1e-300, 5e-324, 0.1 + 0.2, 10**30, -(10**30), math.nan, math.inf, -math.inf,
    True, False, None, Level.LOW, np.float64(0.25), np.float64("nan"),
    "é ü 中文 \u2028 \u2029 \x00 \x1f \" \\ / \t \n \r \ud800",
    {"a": {}, "b": [], "c": [{}], "d": [[], [[]]], "e": ({"x": (1, 2.5, "y")},)},
    {"intent_ranking": Ranking([{"name": "a", "confidence": 0.5}]), "ünïcode kéy": "välue", "": ""},
    {"entities": [{"start": 0, "end": 3, "value": "abc", "entity": "x", "confidence": 0.91,
                   "extractor": "ner_crf", "processors": ["EntitySynonymMapper"]}]},
    # left to the standard library: keys that are not strings, values that are no JSON type, numpy ints
    {1: "one", 2.5: "two", False: "f", None: "n"}, {"x": np.int64(3)}, {"x": [1, {2: 3}]},
]


@pytest.mark.parametrize("value", ODD, ids=range(len(ODD)))
def test_odd_values_as_json_to_string(value):
    try:
        expected = json_to_string(value)
    except (TypeError, ValueError) as err:   # no JSON at all: the same error
        with pytest.raises(type(err)):
            answer_json.dumps(value)
        return
    assert answer_json.dumps(value) == expected


def test_real_answers_as_json_to_string(sample_answers):
    answers = sample_answers
    assert len(answers) > 100 and sum(bool(a["entities"]) for a in answers) > 20
    for answer in answers:
        assert answer_json.dumps(answer) == json_to_string(answer)


def test_a_circular_value_is_refused_as_json_dumps_refuses_it():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        answer_json.dumps(loop)


@pytest.fixture(scope="module")
def sample_answers(tmp_path_factory):
    from support.data import ROOT, SAMPLE
    from support.train import train

    loaded = train(tmp_path_factory.mktemp("answers"), SAMPLE, ROOT / "nlu_config.yml").loaded
    import json

    texts = [e["text"] for e in json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]]
    return [loaded.parse(t) for t in texts + ["", "Ünïcödé ☃ 中文", "a \"quoted\" \\ text"]]
