"""A total deadline for a blocking exchange (an HTTP request and its answer).

Socket timeouts bound each read, not the exchange: an answer trickled one byte a second never trips a
10-second read timeout and never ends. ``run(fn, seconds)`` runs ``fn`` in a daemon thread and gives up
after ``seconds`` (``DeadlineExceeded``, a ``TimeoutError``); a transfer that keeps moving at least
``min_rate`` bytes a second (``progress()`` says how many so far) may go on past it (a large download on a
slow link is not a hang). The abandoned thread is a daemon: it never keeps the process alive, and
``on_expire`` (closing the session) usually ends it at once.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
MIN_RATE = 64 * 1024  # bytes a second: slower than this past the deadline is a hang
_POLL = 0.05


class DeadlineExceeded(TimeoutError):
    pass


def run(fn: Callable[[], T], seconds: float, *, what: str = "the exchange",
        progress: Callable[[], int] | None = None, min_rate: float = MIN_RATE,
        on_expire: Callable[[], Any] | None = None, error: Callable[[str], BaseException] = DeadlineExceeded) -> T:
    """``fn()``, or ``error(message)`` (default DeadlineExceeded) when it is not done within ``seconds`` (see
    the module docstring)."""
    result: dict[str, Any] = {}
    done = threading.Event()

    def worker() -> None:
        try:
            result["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            result["error"] = err
        finally:
            done.set()

    thread = threading.Thread(target=worker, name="nlu-ci-deadline", daemon=True)
    start = time.monotonic()
    thread.start()
    while not done.wait(_POLL):
        elapsed = time.monotonic() - start
        if elapsed < seconds:
            continue
        if progress is not None and progress() >= min_rate * elapsed:
            continue  # still moving fast enough: a big transfer, not a hang
        if on_expire is not None:
            try:
                on_expire()
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise error(f"{what} did not complete within {seconds:g}s (total deadline)")
    if "error" in result:
        raise result["error"]
    return result["value"]
