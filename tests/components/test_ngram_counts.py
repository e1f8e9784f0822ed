"""ngram_counts gives scikit-learn's CountVectorizer.transform counts exactly, for both analyzers nlu-ci uses,
on HWU64 texts and on texts that stress word splitting and lower-casing."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from nlu_ci.components import ngram_counts
from nlu_ci.components.ngrams import WORD_PATTERN, NgramFeatures
from support import growth

HARD = ["", " ", "\t\n", "a", "ab", "abc", "A  B\tC\nd", "wake\u00a0me\u2003up", "ΟΔΟΣ ΟΔΟΣ οδός", "İstanbul ıi",
        "ﬁle ǅ ß STRASSE", "x² 3½ ④", "emoji 🙂🙂 ok", "don't stop-me now!!", "e\u0301 é", "  lead and trail  ",
        "repeat repeat repeat repeat", "ab ab ab"]


@pytest.fixture(scope="module")
def texts():
    if not growth.available():
        return HARD * 3
    doc = json.loads(growth.HWU64.with_name("test.json").read_text(encoding="utf-8"))["rasa_nlu_data"]
    return [e["text"] for e in doc["common_examples"]][:800] + HARD


def _stock(analyzer: str, ngrams: tuple, vocabulary: list[str], texts: list[str]):
    counter = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True, vocabulary=vocabulary,
                              token_pattern=WORD_PATTERN if analyzer == "word" else None, dtype=np.float64)
    return counter, counter.transform(texts).tocsr()


@pytest.mark.parametrize("analyzer,ngrams", [("char_wb", (3, 5)), ("char_wb", (2, 5)), ("char_wb", (1, 1)),
                                             ("word", (1, 2))])
def test_counts_equal_the_count_vectorizers(texts, analyzer, ngrams, monkeypatch):
    fitted = NgramFeatures(word_ngrams=ngrams, char_ngrams=ngrams, min_df=1).fit(texts[::2])   # half unseen
    vocabulary = fitted.char_vocabulary if analyzer == "char_wb" else fitted.word_vocabulary
    counter, stock = _stock(analyzer, ngrams, vocabulary, texts)
    for bound in (ngram_counts.WORD_CACHE_SIZE, 3):   # also with the word cache emptied again and again
        monkeypatch.setattr(ngram_counts, "WORD_CACHE_SIZE", bound)
        columns = ngram_counts.Columns(counter, {t: j for j, t in enumerate(vocabulary)})
        ours = ngram_counts.counts(columns, texts, len(vocabulary))
        assert ours.shape == stock.shape and ours.dtype == stock.dtype == np.float64
        assert ours.indptr.tolist() == stock.indptr.tolist()
        assert ours.indices.tolist() == stock.indices.tolist()    # sorted per row, as scikit-learn's
        assert ours.data.tolist() == stock.data.tolist()
        assert ours.nnz > len(texts)


def test_no_texts_and_no_vocabulary():
    counter, _ = _stock("char_wb", (3, 5), ["abc"], ["abc"])
    columns = ngram_counts.Columns(counter, {"abc": 0})
    assert ngram_counts.counts(columns, [], 1).shape == (0, 1)
    empty = ngram_counts.counts(ngram_counts.Columns(counter, {}), ["abc", ""], 0)
    assert empty.shape == (2, 0) and empty.nnz == 0


def test_features_transform_equals_the_stock_tf_idf_steps(texts):
    """NgramFeatures.transform (counts from ngram_counts) against the same tf-idf steps on the stock counts."""
    features = NgramFeatures(word_ngrams=(1, 2), char_ngrams=(3, 5), min_df=2).fit(texts)
    blocks = []
    for analyzer, ngrams, vocabulary, idf in (("word", (1, 2), features.word_vocabulary, features.word_idf),
                                              ("char_wb", (3, 5), features.char_vocabulary, features.char_idf)):
        x = _stock(analyzer, ngrams, vocabulary, texts)[1]
        data = (np.log(x.data) + 1.0) * idf[x.indices]
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=x.shape[0]))
        norms[norms == 0.0] = 1.0
        blocks.append((data / norms[rows], x.indices, x.indptr))
    ours = features.transform(texts)
    offset = len(features.word_vocabulary)
    expected_indices = [np.concatenate([w[1][w[2][i]:w[2][i + 1]], c[1][c[2][i]:c[2][i + 1]] + offset])
                        for i, (w, c) in enumerate([(blocks[0], blocks[1])] * len(texts))]
    expected_data = [np.concatenate([w[0][w[2][i]:w[2][i + 1]], c[0][c[2][i]:c[2][i + 1]]])
                     for i, (w, c) in enumerate([(blocks[0], blocks[1])] * len(texts))]
    for i in range(len(texts)):
        row = slice(ours.indptr[i], ours.indptr[i + 1])
        assert ours.indices[row].tolist() == expected_indices[i].tolist()
        assert ours.data[row].tolist() == expected_data[i].tolist()
