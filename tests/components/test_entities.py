"""LeanCRFEntityExtractor and the BIO/BILOU tag conversions."""
from __future__ import annotations

import pytest

from nlu_ci.components.tagging import spans_from_tags, tags_from_entities
from nlu_ci.engine.predict import predict_each
from support.train import train

from .support import SAMPLE


class Tok:
    def __init__(self, text, offset):
        self.text, self.offset, self.end = text, offset, offset + len(text)


def tokens(text):
    out, at = [], 0
    for word in text.split():
        at = text.index(word, at)
        out.append(Tok(word, at))
        at += len(word)
    return out


TEXT = "fly from new york city to paris tomorrow"
ENTS = [{"start": 9, "end": 22, "entity": "city"}, {"start": 26, "end": 31, "entity": "city"},
        {"start": 32, "end": 40, "entity": "date"}]


@pytest.mark.parametrize("scheme,expected", [
    ("IO", ["O", "O", "I-city", "I-city", "I-city", "O", "I-city", "I-date"]),
    ("BIO", ["O", "O", "B-city", "I-city", "I-city", "O", "B-city", "B-date"]),
    ("BILOU", ["O", "O", "B-city", "I-city", "L-city", "O", "U-city", "U-date"]),
])
def test_tags_round_trip(scheme, expected):
    toks = tokens(TEXT)
    tags, skipped = tags_from_entities(toks, ENTS, scheme)
    assert tags == expected and skipped == 0
    spans = [(toks[a].offset, toks[b].end, name) for a, b, name in spans_from_tags(tags)]
    assert spans == [(e["start"], e["end"], e["entity"]) for e in ENTS]


def test_adjacent_entities_of_one_type_stay_apart_and_misaligned_ones_are_counted():
    toks = tokens("paris london")
    tags, skipped = tags_from_entities(toks, [{"start": 0, "end": 5, "entity": "city"},
                                              {"start": 6, "end": 12, "entity": "city"},
                                              {"start": 1, "end": 5, "entity": "bad"}], "BIO")
    assert tags == ["B-city", "B-city"] and skipped == 1
    assert spans_from_tags(tags) == [(0, 0, "city"), (1, 1, "city")]


def test_io_tags_read_adjacent_entities_of_one_type_back_as_one():
    """The price of IO's fewer labels (the default): documented in tagging.py and the README."""
    toks = tokens("paris london to rome")
    tags, _ = tags_from_entities(toks, [{"start": 0, "end": 5, "entity": "city"},
                                        {"start": 6, "end": 12, "entity": "city"},
                                        {"start": 16, "end": 20, "entity": "city"}], "IO")
    assert tags == ["I-city", "I-city", "O", "I-city"]
    assert spans_from_tags(tags) == [(0, 1, "city"), (3, 3, "city")]


def test_lenient_decoding_of_stray_inside_tags():
    assert spans_from_tags(["I-a", "I-a", "O", "L-b", "I-c"]) == [(0, 1, "a"), (3, 3, "b"), (4, 4, "c")]
    assert spans_from_tags(["B-a", "L-a", "I-a"]) == [(0, 1, "a"), (2, 2, "a")]


def test_extracts_entities_with_offsets_values_and_confidences(nlu_ci_model):
    loaded = nlu_ci_model.loaded
    text = "what's the weather in Berlin tomorrow"
    ents = loaded.parse(text)["entities"]
    found = {(e["entity"], e["value"]) for e in ents}
    assert ("city", "Berlin") in found, ents
    for e in ents:
        assert text[e["start"]:e["end"]] == e["value"]
        assert 0.0 <= e["confidence"] <= 1.0 + 1e-9
    assert {e["extractor"] for e in ents if e["entity"] == "city"} == {"LeanCRFEntityExtractor"}


def test_persisted_as_a_crfsuite_file_and_reloaded_identically(nlu_ci_model, sample_split):
    trained, loaded, model_dir = nlu_ci_model.trained, nlu_ci_model.loaded, nlu_ci_model.model_dir
    _, test = sample_split
    assert list(model_dir.glob("*.crfsuite"))
    texts = [e["text"] for e in test]
    assert [p["entities"] for p in predict_each(trained, texts)] == \
           [p["entities"] for p in predict_each(loaded, texts)]


def test_bilou_and_lbfgs_settings_train_too(tmp_path):
    from rasa_nlu.training_data import load_data

    pipeline = [{"name": "tokenizer_whitespace"},
                {"name": "nlu_ci.components.LeanCRFEntityExtractor", "tagging": "BILOU", "algorithm": "lbfgs",
                 "max_iterations": 30, "c": 0.05}]
    loaded = train(tmp_path, load_data(str(SAMPLE)), pipeline).loaded
    ents = loaded.parse("order a large pizza with mushrooms")["entities"]
    assert ("topping", "mushrooms") in {(e["entity"], e["value"]) for e in ents}, ents


def test_rejects_an_unknown_tag_scheme():
    from nlu_ci.components import LeanCRFEntityExtractor

    with pytest.raises(ValueError, match="tagging.? must be one of"):
        LeanCRFEntityExtractor({"tagging": "IOB2"})


def test_no_entities_in_training_data_means_no_model_and_no_entities(tmp_path):
    from rasa_nlu.training_data import TrainingData, load_data

    data = load_data(str(SAMPLE))
    plain = TrainingData([m for m in data.training_examples if not m.get("entities")])
    pipeline = [{"name": "tokenizer_whitespace"}, {"name": "nlu_ci.components.LeanCRFEntityExtractor"}]
    trained = train(tmp_path, plain, pipeline)
    loaded, model_dir = trained.loaded, trained.model_dir
    assert not list(model_dir.glob("*.crfsuite"))
    assert loaded.parse("weather in Berlin")["entities"] == []


def test_parallel_parses_from_threads_match_sequential_ones(nlu_ci_model, sample_split):
    from concurrent.futures import ThreadPoolExecutor

    loaded = nlu_ci_model.loaded
    texts = [e["text"] for e in sample_split[1]] * 3
    expected = [loaded.parse(t)["entities"] for t in texts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: loaded.parse(t)["entities"], texts))
    assert got == expected
