"""Stage timing and the signal that stops a run: small helpers of the pipeline with no knowledge of its order."""
from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator

from nlu_ci.engine import memory

log = logging.getLogger(__name__)


class Stages:
    """Times each stage, logs it, and records the durations into the report. Python's cyclic collector is
    held off inside a stage (``engine.memory.collections_deferred``: at 100k examples the stages make
    millions of objects and free few; 2-4 s went to collections that found nothing)."""

    def __init__(self, durations: dict[str, float]):
        self.durations = durations

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("stage %s: started", name)
        try:
            with memory.collections_deferred():
                yield
        finally:
            seconds = time.perf_counter() - t0
            self.durations[name] = round(self.durations.get(name, 0.0) + seconds, 3)
            log.info("stage %s: %.2fs", name, seconds)


class TerminationRequested(BaseException):
    """Raised by the SIGTERM handler. A BaseException on purpose: libraries that catch ``Exception``
    (scikit-learn's grid search records failed fits and goes on) cannot swallow it."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _handling(handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Kubernetes stops a pod with SIGTERM (a person with Ctrl-C: SIGINT): stop at once, clean up, report
    ``failed`` (exit 1)."""

    def handler(signum, frame):
        raise TerminationRequested(f"received {signal.Signals(signum).name}: run stopped")

    with _handling(handler):
        yield


@contextlib.contextmanager
def signals_deferred(warnings: list[str]) -> Iterator[list[str]]:
    """While a finished run is being recorded (metrics push, report, history line), a stop signal must not
    lose the record: note it and go on (the record takes seconds; Kubernetes' grace period is 30 s)."""
    received: list[str] = []

    def handler(signum, frame):
        name = signal.Signals(signum).name
        received.append(name)
        message = f"received {name} while recording the run: the record was finished first"
        log.warning("%s", message)
        warnings.append(message)

    with _handling(handler):
        yield received
