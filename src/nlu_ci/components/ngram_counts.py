"""A fitted vocabulary's n-gram counts in texts: what scikit-learn's ``CountVectorizer.transform`` gives, faster.

``char_wb`` n-grams never cross whitespace: a text's are those of each of its words in turn (scikit-learn's
``_char_wb_ngrams``: the preprocessed text, runs of whitespace made one space, split, each word padded with a
space). Words repeat (HWU64's test set: 7,199 words, 1,403 distinct), so ``Columns`` looks each distinct word's
n-grams up in the vocabulary once and keeps the columns (at most ``WORD_CACHE_SIZE`` words, then afresh: a server
sees unbounded distinct words). Word n-grams: the vectorizer's own analyzer per text, then the same lookups.
``counts`` turns the columns of many texts into one CSR matrix of counts in scikit-learn's canonical form (sorted
column indices per row, float64 counts, as the vectorizers nlu-ci builds). Equal to ``CountVectorizer.transform``:
tests/components/test_ngram_counts.py.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

WORD_CACHE_SIZE = 50000   # distinct words whose char n-gram columns are kept (~100 bytes each)


class Columns:
    """``columns(text)``: the vocabulary columns of ``text``'s n-grams, one per occurrence, in analyzer order."""

    def __init__(self, counter, vocabulary: dict[str, int]):
        """``counter``: a ``CountVectorizer`` (its analyzer settings are used, not its vocabulary)."""
        self.vocabulary = vocabulary
        self._words: dict[str, tuple[int, ...]] | None = None
        if counter.analyzer == "char_wb":
            self._words = {}
            self._decode, self._preprocess = counter.decode, counter.build_preprocessor()
            self._white_spaces, self._ngrams = counter._white_spaces, counter._char_wb_ngrams
        else:
            self._analyze = counter.build_analyzer()

    def __call__(self, text: str) -> list[int]:
        lookup = self.vocabulary.get
        words = self._words
        if words is None:
            return [j for j in map(lookup, self._analyze(text)) if j is not None]
        if len(words) > WORD_CACHE_SIZE:
            words.clear()
        out: list[int] = []
        for word in self._white_spaces.sub(" ", self._preprocess(self._decode(text))).split():
            found = words.get(word)
            if found is None:
                found = words[word] = tuple(j for j in map(lookup, self._ngrams(word)) if j is not None)
            out.extend(found)
        return out


def counts(columns: Columns, texts: list[str], width: int) -> sp.csr_matrix:
    """(len(texts), width) float64 counts, each row's column indices sorted and distinct."""
    flat: list[int] = []
    ends = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        flat.extend(columns(text))
        ends[i] = len(flat)
    cols = np.asarray(flat, dtype=np.int64)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(ends, prepend=0))
    keys, tally = np.unique(rows * max(width, 1) + cols, return_counts=True)   # sorted: by row, then column
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // max(width, 1), minlength=len(texts)), out=indptr[1:])
    index_type = np.int32 if max(len(keys), width) < 2**31 else np.int64
    return sp.csr_matrix((tally.astype(np.float64), (keys % max(width, 1)).astype(index_type),
                          indptr.astype(index_type)), shape=(len(texts), width))
