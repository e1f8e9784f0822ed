"""Training tokens are ``SlimToken`` (engine.slim_tokens): rasa_nlu's words and offsets, the Token API, a
fraction of the memory; a model trained on them is rasa_nlu's (test_training_order compares the files)."""
from __future__ import annotations

import pickle
import sys

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.engine import slim_tokens
from support.data import SAMPLE

TEXTS = ["", "  ", "book a table for 2 at 7.30, please!", "10.000 euros... now?", "x² 3½ ④", "a  b\tc\nd",
         "what's up", "end."]


def _stock_and_slim(texts):
    from rasa_nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa_nlu.training_data import Message, TrainingData

    tokenizer = WhitespaceTokenizer()
    stock = TrainingData([Message(t, {"intent": "x"}) for t in texts])
    slim = TrainingData([Message(t, {"intent": "x"}) for t in texts])
    tokenizer.train(stock, None)
    slim_tokens.train(tokenizer, slim, None)
    return stock.training_examples, slim.training_examples


def test_slim_tokens_are_rasas_words_and_offsets_with_the_same_api():
    import json

    texts = TEXTS + [e["text"] for e in json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]]
    stock, slim = _stock_and_slim(texts)
    for a, b in zip(stock, slim, strict=True):
        assert [(t.text, t.offset, t.end, t.data) for t in a.get("tokens")] == \
               [(t.text, t.offset, t.end, t.data) for t in b.get("tokens")]
        assert all(type(t) is slim_tokens.SlimToken for t in b.get("tokens"))
    token = slim[2].get("tokens")[0]
    assert token.get("pattern") is None and token.get("pattern", {}) == {}
    token.set("pattern", {"num": False})
    assert token.get("pattern") == {"num": False} and token.data == {"pattern": {"num": False}}
    copy = pickle.loads(pickle.dumps(token))
    assert (copy.text, copy.offset, copy.end, copy.data) == (token.text, token.offset, token.end, token.data)


def test_a_slim_token_is_a_fraction_of_a_stock_one():
    stock, slim = _stock_and_slim(["hello there"])
    a, b = stock[0].get("tokens")[0], slim[0].get("tokens")[0]
    size_stock = sys.getsizeof(a) + sys.getsizeof(a.__dict__) + sys.getsizeof(a.data)
    assert not hasattr(b, "__dict__") and b._data is None
    assert sys.getsizeof(b) * 3 < size_stock
