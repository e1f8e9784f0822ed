"""Sparse word + character n-gram TF-IDF features, persisted as plain arrays (no pickles).

``NgramFeatures.fit(texts)`` learns two vocabularies (word n-grams and ``char_wb`` n-grams) and their
IDF weights; ``transform(texts)`` returns one L2-normalised CSR row per text. ``state()`` gives JSON
lists and numpy arrays that ``from_state`` turns back into an identical featurizer, so a model
directory never depends on how a scikit-learn version pickles its objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlu_ci.components import ngram_counts

try:  # the kernel of a CSR matrix @ a dense one (scipy's private module; without it: the public operator)
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover
    _csr_matvecs = None

WORD_PATTERN = r"(?u)\b\w+\b"


@dataclass
class NgramFeatures:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 2
    max_features: int | None = None      # per analyzer; None = no cap
    word_vocabulary: list[str] = field(default_factory=list)
    char_vocabulary: list[str] = field(default_factory=list)
    word_idf: np.ndarray | None = None
    char_idf: np.ndarray | None = None

    # -- learning -------------------------------------------------------------------------------
    def fit(self, texts: list[str], chunk: int = 16384) -> NgramFeatures:
        """Learn both vocabularies and IDF weights (scikit-learn's ``TfidfVectorizer.fit``: the same terms in
        the same order, bit-identical weights; tests/components/test_intent.py). Returns self.

        The n-grams are counted ``chunk`` texts at a time (``ngram_counts``: each distinct word's char n-grams
        made once), so only one chunk's occurrences are held at once, never the whole set's n-gram matrix
        (531 MB at 100k examples through scikit-learn in one go)."""
        min_df = self.min_df if len(texts) >= 4 * self.min_df else 1
        (self.word_vocabulary, self.word_idf), (self.char_vocabulary, self.char_idf) = (
            self._fit_counted(texts, analyzer, tuple(ngrams), min_df, chunk)
            for analyzer, ngrams in (("word", self.word_ngrams), ("char_wb", self.char_ngrams)))
        self._vectorizers = self._analyzers = None
        return self

    def _fit_counted(self, texts: list[str], analyzer: str, ngrams: tuple, min_df: int,
                     chunk: int) -> tuple[list[str], np.ndarray]:
        """Document and term frequencies per n-gram, summed chunk by chunk, then scikit-learn's own rules (1.x
        ``CountVectorizer._limit_features``: ``min_df`` on document frequency, ``max_features`` by term
        frequency, its ``argsort`` over the sorted terms; ``TfidfTransformer.fit``: smooth IDF
        ``log((1 + n) / (1 + df)) + 1``)."""
        from sklearn.feature_extraction.text import CountVectorizer

        counter = CountVectorizer(analyzer=analyzer, ngram_range=ngrams, lowercase=True,
                                  token_pattern=WORD_PATTERN if analyzer == "word" else None)
        columns = ngram_counts.Columns(counter, {}, grow=True)
        df, tf = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        for start in range(0, len(texts), chunk):
            d, t = ngram_counts.frequencies(columns, texts[start:start + chunk])
            if len(d) > len(df):   # the vocabulary grew: new terms have no counts before this chunk
                df, tf = (np.concatenate([a, np.zeros(len(d) - len(a), dtype=np.int64)]) for a in (df, tf))
            df[:len(d)] += d
            tf[:len(t)] += t
        index = columns.vocabulary
        if not index:
            return [], np.zeros(0)
        terms = sorted(index)
        order = np.fromiter((index[t] for t in terms), dtype=np.int64, count=len(terms))
        df, tf = df[order], tf[order]
        keep = np.flatnonzero(df >= min_df)
        if self.max_features is not None and len(keep) > self.max_features:
            # the same sort call on the same float64 values as scikit-learn's (its ties fall the same way)
            keep = np.sort(keep[(-tf[keep].astype(np.float64)).argsort()[: self.max_features]])
        if not len(keep):           # scikit-learn: "After pruning, no terms remain"
            return [], np.zeros(0)
        idf = np.log(float(len(texts) + 1) / (df[keep].astype(np.float64) + 1.0)) + 1.0
        return [terms[i] for i in keep], idf

    @property
    def n_features(self) -> int:
        return len(self.word_vocabulary) + len(self.char_vocabulary)

    # -- applying -------------------------------------------------------------------------------
    def _counters(self):
        from sklearn.feature_extraction.text import CountVectorizer

        if getattr(self, "_vectorizers", None) is None:
            self._vectorizers = [
                CountVectorizer(analyzer=analyzer, ngram_range=tuple(ngrams), lowercase=True,
                                token_pattern=WORD_PATTERN if analyzer == "word" else None,
                                vocabulary=vocab, dtype=np.float64) if vocab else None
                for analyzer, ngrams, vocab in (("word", self.word_ngrams, self.word_vocabulary),
                                                ("char_wb", self.char_ngrams, self.char_vocabulary))
            ]
        return self._vectorizers

    def transform(self, texts: list[str], chunk: int = 8192) -> sp.csr_matrix:
        """TF-IDF rows (sublinear tf, each block L2-normalised), one per text.

        In chunks of ``chunk`` texts: every step is row-local, so the rows are the same as in one go, but the
        temporaries (CountVectorizer's index lists, the float64 steps, the block stack) are those of a chunk,
        not of the whole set (at 100k examples ~360 MB over the matrix in one go)."""
        if len(texts) <= chunk:
            return self._transform(texts)
        parts = [self._transform(texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
        data = np.concatenate([p.data for p in parts])
        indices = np.concatenate([p.indices for p in parts])
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(np.concatenate([np.diff(p.indptr) for p in parts]), out=indptr[1:])
        width = parts[0].shape[1]
        del parts
        index_type = np.int32 if len(data) < 2**31 else np.int64
        return sp.csr_matrix((data, indices.astype(index_type, copy=False), indptr.astype(index_type, copy=False)),
                             shape=(len(texts), width))

    def _transform(self, texts: list[str]) -> sp.csr_matrix:
        blocks = []
        for columns, idf in self._lookups():
            x = ngram_counts.counts(columns, texts, len(idf))   # CountVectorizer.transform's counts
            # sublinear tf * idf, then each row scaled to unit length (all row-local: batch == one by one)
            data = (np.log(x.data) + 1.0) * idf[x.indices]
            rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=x.shape[0]))
            norms[norms == 0.0] = 1.0
            data /= norms[rows]
            blocks.append(sp.csr_matrix((data, x.indices, x.indptr), shape=x.shape))
        if not blocks:
            return sp.csr_matrix((len(texts), 0), dtype=np.float64)
        return sp.hstack(blocks, format="csr")

    def _lookups(self) -> list[tuple[ngram_counts.Columns, np.ndarray]]:
        """(text -> vocabulary columns, idf) per block with a vocabulary: the CountVectorizers' own analyzers
        and vocabularies (``ngram_counts``)."""
        if getattr(self, "_analyzers", None) is None:
            self._analyzers = [
                (ngram_counts.Columns(counter, {term: j for j, term in enumerate(vocab)}), idf)
                for counter, vocab, idf in zip(self._counters(), (self.word_vocabulary, self.char_vocabulary),
                                               (self.word_idf, self.char_idf), strict=True)
                if counter is not None
            ]
        return self._analyzers

    def transform_one(self, text: str) -> sp.csr_matrix:
        """``transform([text])`` for one text without the CountVectorizer machinery (a parse per message):
        the same analyzers, dictionary lookups and the same numpy steps, so the same row."""
        cols, data, width = self._row_one(text)
        if cols is None:
            return sp.csr_matrix((1, 0), dtype=np.float64)
        return sp.csr_matrix((data, cols, np.array([0, len(cols)], dtype=np.int32)), shape=(1, width))

    def dot_one(self, text: str, weights: np.ndarray) -> np.ndarray:
        """``transform_one(text) @ weights`` (a C-contiguous float64 (n_features, k) array) as a (1, k) array:
        scipy's own kernel for it (``csr_matvecs``, what ``@`` runs), without making the sparse matrix."""
        cols, data, width = self._row_one(text)
        if cols is None or _csr_matvecs is None or weights.dtype != np.float64 or not weights.flags.c_contiguous:
            return np.asarray(self.transform_one(text) @ weights)
        out = np.zeros((1, weights.shape[1]), dtype=np.float64)
        _csr_matvecs(1, width, weights.shape[1], np.array([0, len(cols)], dtype=cols.dtype), cols, data,
                     weights.ravel(), out.ravel())
        return out

    def _row_one(self, text: str) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """(column indices, values, width) of ``text``'s row; (None, None, 0) without any analyzer."""
        indices, data, offset = [], [], 0
        for columns, idf in self._lookups():
            counts: dict[int, int] = {}
            for j in columns(text):
                counts[j] = counts.get(j, 0) + 1
            cols = np.array(sorted(counts), dtype=np.int32)
            values = np.array([counts[j] for j in cols.tolist()], dtype=np.float64)
            values = (np.log(values) + 1.0) * idf[cols]
            norms = np.sqrt(np.bincount(np.zeros(len(cols), dtype=np.intp), weights=values * values, minlength=1))
            norms[norms == 0.0] = 1.0
            values /= norms[0]
            indices.append(cols + offset)
            data.append(values)
            offset += len(idf)
        if not indices:
            return None, None, 0
        return np.concatenate(indices), np.concatenate(data), offset

    # -- persistence ----------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able settings and vocabularies, numpy arrays)."""
        meta = {"word_ngrams": list(self.word_ngrams), "char_ngrams": list(self.char_ngrams),
                "min_df": self.min_df, "max_features": self.max_features,
                "word_vocabulary": self.word_vocabulary, "char_vocabulary": self.char_vocabulary}
        return meta, {"word_idf": self.word_idf, "char_idf": self.char_idf}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> NgramFeatures:
        return cls(word_ngrams=tuple(meta["word_ngrams"]), char_ngrams=tuple(meta["char_ngrams"]),
                   min_df=int(meta["min_df"]), max_features=meta.get("max_features"),
                   word_vocabulary=list(meta["word_vocabulary"]), char_vocabulary=list(meta["char_vocabulary"]),
                   word_idf=np.asarray(arrays["word_idf"], dtype=np.float64),
                   char_idf=np.asarray(arrays["char_idf"], dtype=np.float64))
