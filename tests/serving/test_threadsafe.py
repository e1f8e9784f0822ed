"""rasa_nlu's stock CRFEntityExtractor shares one crfsuite tagger between threads; rasa_nlu's server parses in a
thread pool. Without ``nlu_ci.serving.threadsafe`` this test's 12,000 concurrent calls give a few dozen
``ValueError: The position, N is out of range of N`` (measured: 115 in 30,000) and answers mixed up between
sentences; with it, every answer equals the one-thread answer."""
from __future__ import annotations

import threading

import pytest
from serving_helpers import TEXTS, Store

from support.data import FAST_CONFIG

pytestmark = pytest.mark.slow


def test_concurrent_crf_extraction_gives_the_single_thread_answers(tmp_path):
    store = Store(tmp_path, FAST_CONFIG)
    name = store.run(0)["candidate"]["model"]
    from rasa_nlu.extractors.crf_entity_extractor import CRFEntityExtractor
    from rasa_nlu.model import Interpreter
    from rasa_nlu.training_data import Message

    import nlu_ci.engine  # noqa: F401  (compat shims: the pickles need them)
    from nlu_ci.serving import threadsafe

    threadsafe.apply()
    interpreter = Interpreter.load(str(store.models / "default" / name))
    at = next(i for i, c in enumerate(interpreter.pipeline) if isinstance(c, CRFEntityExtractor))
    crf = interpreter.pipeline[at]
    messages = []
    for text in TEXTS:
        m = Message(text, {})
        for component in interpreter.pipeline[:at]:
            component.process(m, **interpreter.context)
        messages.append(m)
    expected = [crf.extract_entities(m) for m in messages]
    assert any(expected), "the model extracts no entity from the test sentences: nothing would be compared"
    wrong: list[str] = []

    def work(k: int) -> None:
        for i in range(2000):
            j = (i + k) % len(messages)
            try:
                if crf.extract_entities(messages[j]) != expected[j]:
                    wrong.append(f"{TEXTS[j]!r}: other entities")
            except Exception as err:  # noqa: BLE001 (what the race raises is the finding)
                wrong.append(repr(err)[:100])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert wrong == []
