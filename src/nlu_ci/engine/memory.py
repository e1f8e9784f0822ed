"""Memory of a training or a job step: freed heap back to the kernel, and the cyclic collector held off.

``trim``: crfsuite keeps a training set as many small ``malloc`` blocks; freed, they stay in the process's heap
(its RSS) until something trims it, and a later step (the intent fit at 100k examples) then peaks on top of
them. Called after a large C structure is freed; a no-op where there is no glibc.

``collections_deferred``: a step that makes millions of objects and frees few (100k examples loaded, their
tokens, the CRF's feature strings) sets off Python's cyclic collector again and again, and each full
collection walks every live object: 2-4 s of a 100k run went to it (the tokenizer alone 3.8 s with it,
0.9 s without). Held off for the step; the first allocation after it collects what the step made (the young
generation's count is far over its threshold by then), once."""
from __future__ import annotations

import contextlib
import ctypes
import gc
from collections.abc import Iterator


def trim() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def collections_deferred() -> Iterator[None]:
    """The cyclic garbage collector paused inside and enabled again when it ends (left as it was when it was
    already paused)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
