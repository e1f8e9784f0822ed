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

import array

import numpy as np
import scipy.sparse as sp

WORD_CACHE_SIZE = 50000   # distinct words whose char n-gram columns are kept (~100 bytes each)


class Columns:
    """``columns(text)``: the vocabulary columns of ``text``'s n-grams, one per occurrence, in analyzer order.

    ``grow``: n-grams not in the vocabulary are added to it (the next column each), for learning one."""

    def __init__(self, counter, vocabulary: dict[str, int], grow: bool = False):
        """``counter``: a ``CountVectorizer`` (its analyzer settings are used, not its vocabulary)."""
        self.vocabulary, self._grow = vocabulary, grow
        self._words: dict[str, tuple[int, ...]] | None = None
        if counter.analyzer == "char_wb":
            self._words = {}
            self._decode, self._preprocess = counter.decode, counter.build_preprocessor()
            self._white_spaces, self._ngrams = counter._white_spaces, counter._char_wb_ngrams
        else:
            self._analyze = counter.build_analyzer()

    def _lookup(self, terms) -> list[int] | tuple[int, ...]:
        vocabulary = self.vocabulary
        if self._grow:
            add = vocabulary.setdefault
            return [add(term, len(vocabulary)) for term in terms]
        return tuple(j for j in map(vocabulary.get, terms) if j is not None)

    def __call__(self, text: str) -> list[int] | tuple[int, ...]:
        words = self._words
        if words is None:
            return self._lookup(self._analyze(text))
        if len(words) > WORD_CACHE_SIZE:
            words.clear()
        out: list[int] = []
        for word in self._white_spaces.sub(" ", self._preprocess(self._decode(text))).split():
            found = words.get(word)
            if found is None:
                found = words[word] = tuple(self._lookup(self._ngrams(word)))
            out.extend(found)
        return out


def _occurrences(columns: Columns, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every n-gram occurrence of every text (with ``grow``, the vocabulary has grown after)."""
    flat = array.array("q")
    ends = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        flat.extend(columns(text))
        ends[i] = len(flat)
    cols = np.frombuffer(flat, dtype=np.int64) if len(flat) else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), np.diff(ends, prepend=0))
    return rows, cols


def _distinct(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct keys in ascending order, how often each occurs): ``np.unique(keys, return_counts=True)``
    by one sort (numpy 2's ``unique`` hashes first: 0.27 s for HWU64's 0.7 million n-grams, the sort 0.03 s)."""
    keys = np.sort(keys)
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return keys[starts], np.diff(starts, append=len(keys))


def frequencies(columns: Columns, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document frequency, term frequency) of each column of ``columns.vocabulary`` in ``texts`` (scikit-learn's
    ``_document_frequency`` and column sums of the count matrix); with ``grow``, the vocabulary first grows by
    the texts' new n-grams."""
    rows, cols = _occurrences(columns, texts)
    width = max(len(columns.vocabulary), 1)
    present = _distinct(rows * width + cols)[0] % width
    return np.bincount(present, minlength=width)[:len(columns.vocabulary)], \
        np.bincount(cols, minlength=width)[:len(columns.vocabulary)]


def counts(columns: Columns, texts: list[str], width: int) -> sp.csr_matrix:
    """(len(texts), width) float64 counts, each row's column indices sorted and distinct."""
    rows, cols = _occurrences(columns, texts)
    stride = max(width, 1)
    keys, tally = _distinct(rows * stride + cols)   # sorted: by row, then column
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // stride, minlength=len(texts)), out=indptr[1:])
    index_type = np.int32 if max(len(keys), width) < 2**31 else np.int64
    return sp.csr_matrix((tally.astype(np.float64), (keys % stride).astype(index_type),
                          indptr.astype(index_type)), shape=(len(texts), width))
