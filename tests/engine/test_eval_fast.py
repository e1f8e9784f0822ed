"""The fast batch path (engine.batch with engine.regex_batch, the CRF's token features) gives what rasa_nlu's
per-message parse gives, on real HWU64 test examples with a model trained on HWU64 (its 67 regex features)."""
from __future__ import annotations

import json
import random

import pytest

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.components.entities import token_features
from nlu_ci.engine import batch, regex_batch
from nlu_ci.engine.predict import predict_each
from support import growth
from support.data import ROOT
from support.train import train

pytestmark = pytest.mark.skipif(not growth.available(), reason="HWU64 is not in this checkout layout")
TEST = growth.HWU64.with_name("test.json")
EXTRA = ["", "  ", "wake me up at 7am", "WAKE ME UP AT 7 AM!!!", "x² 3½ ④ digits", "olly play 10 songs by queen"]


def _doc(path):
    return json.loads(path.read_text(encoding="utf-8"))["rasa_nlu_data"]


@pytest.fixture(scope="module")
def hwu_model(tmp_path_factory):
    """The project's pipeline (nlu_config.yml) trained on 2,500 HWU64 examples with all its regex features."""
    doc = _doc(growth.HWU64)
    examples = random.Random(3).sample(doc["common_examples"], 2500)
    path = tmp_path_factory.mktemp("hwu-fast") / "train.json"
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples,
                                                  "regex_features": doc["regex_features"]}}))
    return train(path.parent, path, ROOT / "nlu_config.yml").loaded


@pytest.fixture(scope="module")
def texts():
    return [e["text"] for e in _doc(TEST)["common_examples"]][:600] + EXTRA


def test_batched_predictions_equal_per_message_parse(hwu_model, texts):
    assert any(type(c).__name__ == "RegexFeaturizer" and c.known_patterns for c in hwu_model.pipeline)
    batched = batch.predict_batch(hwu_model, texts)
    each = predict_each(hwu_model, texts)
    assert batched == each   # same intents, rankings, entities, confidences (exactly)
    assert sum(bool(p["entities"]) for p in batched) > 100


def test_a_big_batch_is_predicted_in_two_processes_with_the_same_results(hwu_model, texts, tmp_path, monkeypatch):
    import os

    from nlu_ci.engine import predict as predict_mod

    assert len(texts) >= predict_mod.SPLIT_AT
    one = predict_mod.predict(hwu_model, texts, workers=1)
    record, real = tmp_path / "pids", predict_mod.predict_batch

    def spy(interpreter, part):
        with open(record, "a") as fh:
            fh.write(f"{os.getpid()} {len(part)}\n")
        return real(interpreter, part)

    monkeypatch.setattr(predict_mod, "predict_batch", spy)
    two = predict_mod.predict(hwu_model, texts, workers=2)
    assert two == one    # same predictions, same order
    calls = [line.split() for line in record.read_text().splitlines()]
    assert len({pid for pid, _ in calls}) == 2 and sum(int(n) for _, n in calls) == len(texts)
    record.unlink()
    assert predict_mod.predict(hwu_model, texts[: predict_mod.SPLIT_AT - 1], workers=2) == one[: predict_mod.SPLIT_AT - 1]
    assert {pid for pid, _ in (line.split() for line in record.read_text().splitlines())} == {str(os.getpid())}


def _messages(model, texts):
    from rasa_nlu.training_data import Message

    out = [Message(t, model.default_output_attributes()) for t in texts if t]
    for message in out:
        model.pipeline[0].process(message)   # the tokenizer
    return out


def _state(messages):
    return [([list(t.get("pattern").items()) for t in m.get("tokens")], m.get("text_features").tolist(),
             m.get("text_features").dtype.str) for m in messages]


def test_regex_batch_marks_tokens_as_the_stock_featurizer(hwu_model, texts):
    featurizer = next(c for c in hwu_model.pipeline if type(c).__name__ == "RegexFeaturizer")
    stock, fast, one = _messages(hwu_model, texts), _messages(hwu_model, texts), _messages(hwu_model, texts)
    for message in stock:
        regex_batch.stock_process(featurizer, message)   # rasa_nlu's own process (features_for_patterns)
    regex_batch.process_batch(featurizer, fast)
    for message in one:
        featurizer.process(message)                      # installed: a batch of one per message (each /parse)
    assert _state(fast) == _state(stock)     # same keys in the same order, same values, same text features
    assert _state(one) == _state(stock)
    assert sum(any(v for t in m.get("tokens") for v in t.get("pattern").values()) for m in fast) > 50
    # a second pass over already-marked tokens (existing dicts updated in place) agrees too
    for message in stock:
        regex_batch.stock_process(featurizer, message)
    regex_batch.process_batch(featurizer, fast)
    for message in one:
        featurizer.process(message)
    assert _state(fast) == _state(stock)
    assert _state(one) == _state(stock)


def test_tokens_share_read_only_marks_and_the_stock_code_gets_its_own_copies(hwu_model, texts):
    """Memory: one marks dict per combination of matched names (HWU64: +110 MB of per-token dicts before);
    writing to a shared one raises; the stock code (a featurizer with repeated names) writes private copies."""
    import copy
    import pickle

    from rasa_nlu.featurizers.regex_featurizer import RegexFeaturizer

    featurizer = next(c for c in hwu_model.pipeline if type(c).__name__ == "RegexFeaturizer")
    fast = _messages(hwu_model, texts)
    regex_batch.process_batch(featurizer, fast)
    marks = [t.get("pattern") for m in fast for t in m.get("tokens")]
    kinds = {tuple(k for k, v in d.items() if v) for d in marks}
    assert len({id(d) for d in marks}) == len(kinds) < len(marks) / 20
    shared = marks[0]
    with pytest.raises(TypeError, match="read-only"):
        shared[next(iter(shared))] = True
    with pytest.raises(TypeError):
        shared.update({})
    assert pickle.loads(pickle.dumps(shared)) == shared and copy.deepcopy(shared) is shared
    before = [dict(d) for d in marks]
    repeated = RegexFeaturizer(known_patterns=[{"name": "n", "pattern": "[0-9]"}, {"name": "n", "pattern": "am"}])
    for message in fast:
        repeated.process(message)   # repeated names: the stock code, in place
    after = [t.get("pattern") for m in fast for t in m.get("tokens")]
    assert all(type(d) is dict and set(d) == set(b) | {"n"} for d, b in zip(after, before, strict=True))
    assert [dict(d) for d in marks] == before    # the shared dicts are as they were
    assert any(d["n"] for d in after)


@pytest.mark.parametrize("chunk", [2048, 3])
def test_literal_patterns_searched_across_all_texts_mark_what_the_stock_featurizer_marks(hwu_model, chunk,
                                                                                          monkeypatch):
    """Literal patterns are found by one search over all texts joined (regex_batch.literal_hits): never across
    two texts, not fooled by texts holding the separator, in pattern order among the other patterns."""
    from rasa_nlu.featurizers.regex_featurizer import RegexFeaturizer

    patterns = ["alarm", "ala", "alarmx", "a\\.m", "(?i)WAKE", "[0-9]+", "", "\x00", "\x00al", "am am", "[w]ake",
                "m$", "(?x) a m"]
    featurizer = RegexFeaturizer(known_patterns=[{"name": f"p{i}", "pattern": p} for i, p in enumerate(patterns)])
    texts = ["set alarm", "ala", "rm wake", "a.m. am am am", "x\x00alarm 7", "WAKE me", "am", "ala", "rmx",
             "nothing here"]
    monkeypatch.setattr(regex_batch, "CHUNK", chunk)   # 3: the batch searched in several chunks
    assert regex_batch.literal_hits([(0, "ala"), (1, "rm")], texts[:3]) == [[0, 1], [0], [1]]
    assert regex_batch.literal_hits([(2, "alarmx")], texts[7:9]) == [[], []]   # "ala", "rmx": not across two
    for sample in (texts, texts[:1], texts[1:3], texts[::-1]):
        stock, fast = _messages(hwu_model, sample), _messages(hwu_model, sample)
        for message in stock:
            regex_batch.stock_process(featurizer, message)
        regex_batch.process_batch(featurizer, fast)
        assert _state(fast) == _state(stock)
    marked = {name for m in fast for t in m.get("tokens") for name, v in t.get("pattern").items() if v}
    assert {"p0", "p1", "p3", "p4", "p5", "p8", "p9", "p10", "p12"} <= marked and "p2" not in marked


def test_regex_process_is_the_batch_of_one_and_stock_process_is_rasa_nlus():
    import inspect

    from rasa_nlu.featurizers.regex_featurizer import RegexFeaturizer

    assert RegexFeaturizer.process is regex_batch._process_one
    stock = inspect.getsource(regex_batch.stock_process).split('"""')[-1].strip()
    assert stock == 'message.set("text_features", component._text_features_with_regex(message))'


def test_ranking_is_the_top_ten_of_the_full_scores(hwu_model, texts):
    from rasa_nlu.classifiers import INTENT_RANKING_LENGTH

    classifier = next(c for c in hwu_model.pipeline if type(c).__name__ == "LinearIntentClassifier")
    assert classifier.component_config["ranking_length"] == INTENT_RANKING_LENGTH == 10
    assert len(classifier.classes) > 10
    for text in [t for t in texts if t.strip()][:50]:
        ranking = hwu_model.parse(text)["intent_ranking"]
        full = classifier.predict_proba([text])[0]
        top = sorted(range(len(full)), key=lambda i: -full[i])[:10]
        assert [r["name"] for r in ranking] == [classifier.classes[i] for i in top]
        assert [r["confidence"] for r in ranking] == [float(full[i]) for i in top]


def test_token_features_flag_digits_in_any_script(hwu_model):
    (message,) = _messages(hwu_model, ["set x² and 3½ and ④ and abc"])
    flags = [[f for f in feats if f in ("digit", "hasdigit")] for feats in token_features(message.get("tokens"))]
    assert flags == [[], ["hasdigit"], [], ["hasdigit"], [], ["digit"], [], []]


def _reference_token_features(tokens, window=2):
    """The CRF's attribute strings as they were written before the per-text cache (one pass per token)."""
    low = [t.text.lower() for t in tokens]
    out = []
    for i, token in enumerate(tokens):
        w, text = low[i], token.text
        feats = ["b", "w=" + w, "p3=" + w[:3], "s3=" + w[-3:], "s2=" + w[-2:]]
        if text.isdigit():
            feats.append("digit")
        elif not text.isalpha() and any(ch.isdigit() for ch in text):
            feats.append("hasdigit")
        if text.istitle():
            feats.append("title")
        elif text.isupper():
            feats.append("upper")
        for d in range(1, window + 1):
            feats.append(f"-{d}=" + (low[i - d] if i - d >= 0 else "<s>"))
            feats.append(f"+{d}=" + (low[i + d] if i + d < len(tokens) else "</s>"))
        feats.extend("re=" + name for name, matched in (token.get("pattern") or {}).items() if matched)
        out.append(feats)
    return out


@pytest.mark.parametrize("window", [0, 1, 2, 3])
def test_token_features_with_a_shared_cache_are_the_strings_of_each_token(hwu_model, texts, window):
    messages = _messages(hwu_model, texts + ["a", "A a a", "Set SET set 7 7am"])
    regex = next(c for c in hwu_model.pipeline if type(c).__name__ == "RegexFeaturizer")
    regex_batch.process_batch(regex, messages)
    cache: dict = {}
    for message in messages:
        tokens = message.get("tokens")
        assert token_features(tokens, window, cache) == _reference_token_features(tokens, window)
        assert token_features(tokens, window) == _reference_token_features(tokens, window)
    assert any("re=" in f for m in messages for feats in token_features(m.get("tokens"), window) for f in feats)
    assert 0 < len(cache) < sum(len(m.get("tokens")) for m in messages)   # one entry per distinct text


def test_the_extractors_feature_cache_starts_afresh_past_its_bound(hwu_model, monkeypatch):
    import nlu_ci.components.entities as entities

    crf = next(c for c in hwu_model.pipeline if type(c).__name__ == "LeanCRFEntityExtractor")
    monkeypatch.setattr(entities, "FEATURE_CACHE_SIZE", 5)
    messages = _messages(hwu_model, ["wake me up at seven tomorrow morning please", "play queen"])
    before = crf.extract_batch(messages)
    assert len(crf._features_cache()) == 0   # the first message's 7 texts passed the bound
    assert crf.extract_batch(messages[1:]) == before[1:]
    assert len(crf._features_cache()) == 2


def test_per_text_featurizer_equals_the_count_vectorizers(hwu_model, texts):
    features = next(c for c in hwu_model.pipeline if type(c).__name__ == "LinearIntentClassifier").features
    for text in texts:
        one, stock = features.transform_one(text), features.transform([text])
        assert one.shape == stock.shape
        assert one.indices.tolist() == stock.indices.tolist() and one.indptr.tolist() == stock.indptr.tolist()
        assert one.data.tolist() == stock.data.tolist()     # exactly, not within a tolerance
    assert features.transform_one("").nnz == 0


def _training_copy(doc, lookup=False):
    from rasa_nlu.training_data import TrainingData
    from rasa_nlu.training_data.formats.rasa import RasaReader

    data = RasaReader().read_from_json({"rasa_nlu_data": doc})
    if lookup:
        data.lookup_tables.append({"name": "city", "elements": ["london", "new york", "paris"]})
    return TrainingData(data.training_examples[:1500], regex_features=list(data.regex_features),
                        lookup_tables=list(data.lookup_tables))


@pytest.mark.parametrize("lookup", [False, True], ids=["patterns", "patterns+lookup"])
def test_regex_batch_train_leaves_what_the_stock_train_leaves(lookup):
    """engine.training trains a stock RegexFeaturizer by regex_batch.train: the featurizer's patterns and
    every training example's token marks and text features equal rasa_nlu's own train's (HWU64's 67)."""
    from rasa_nlu.featurizers.regex_featurizer import RegexFeaturizer
    from rasa_nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer

    from nlu_ci.engine import training

    doc = _doc(growth.HWU64)
    stock_data, fast_data = _training_copy(doc, lookup), _training_copy(doc, lookup)
    for data in (stock_data, fast_data):
        WhitespaceTokenizer().train(data, None)
    stock, fast = RegexFeaturizer(), RegexFeaturizer()
    stock.train(stock_data, None)
    training._train_step(fast)(fast_data, None)
    assert fast.known_patterns == stock.known_patterns and len(fast.known_patterns) == 67 + lookup
    assert _state(fast_data.training_examples) == _state(stock_data.training_examples)
    assert sum(any(m.get("text_features")) for m in fast_data.training_examples) > 100


def test_regex_matchers_follow_the_component_s_patterns(hwu_model, texts):
    """The matchers are kept per component: a new pattern list (a component trained or loaded again) is seen."""
    featurizer = next(c for c in hwu_model.pipeline if type(c).__name__ == "RegexFeaturizer")
    original = featurizer.known_patterns
    try:
        for patterns in (original[::-1], original[: len(original) // 2], [dict(original[0], name="renamed")]):
            featurizer.known_patterns = patterns
            stock, one = _messages(hwu_model, texts), _messages(hwu_model, texts)
            for s, o in zip(stock, one, strict=True):
                regex_batch.stock_process(featurizer, s)
                featurizer.process(o)
            assert _state(one) == _state(stock)
    finally:
        featurizer.known_patterns = original


def test_per_text_scores_equal_the_sparse_product(hwu_model, texts):
    classifier = next(c for c in hwu_model.pipeline if type(c).__name__ == "LinearIntentClassifier")
    features, weights = classifier.features, classifier.weights
    for text in texts:
        fast = features.dot_one(text, weights)
        assert fast.shape == (1, weights.shape[1])
        assert fast.tolist() == (features.transform([text]) @ weights).tolist()   # exactly
    assert not features.dot_one("", weights).any()
