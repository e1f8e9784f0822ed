"""rasa_nlu 0.15's stock ``CRFEntityExtractor`` under concurrent requests (applied by ``nlu-ci serve`` always).

rasa_nlu's server parses each request in a thread pool, and ``CRFEntityExtractor`` tags with the one crfsuite
tagger of its ``sklearn_crfsuite.CRF``: ``set`` then ``marginal`` on shared state, so two requests at once read
each other's sentence and fail (``IndexError: The position, 5is out of range of 5``: a 500). Found by
``tests/serving/bench_swap.py --pipeline classic``. Here each extractor's ``extract_entities`` runs under its
own lock (the GIL serialises most of it anyway). nlu-ci's ``LeanCRFEntityExtractor`` keeps one tagger per
thread and needs no lock.
"""
from __future__ import annotations

import threading

_guard = threading.Lock()


def apply() -> None:
    from rasa_nlu.extractors.crf_entity_extractor import CRFEntityExtractor

    if getattr(CRFEntityExtractor, "_nlu_ci_serialised", False):
        return
    original = CRFEntityExtractor.extract_entities

    def extract_entities(self, message):
        lock = self.__dict__.get("_nlu_ci_lock")
        if lock is None:
            with _guard:
                lock = self.__dict__.setdefault("_nlu_ci_lock", threading.Lock())
        with lock:
            return original(self, message)

    CRFEntityExtractor.extract_entities = extract_entities
    CRFEntityExtractor._nlu_ci_serialised = True
