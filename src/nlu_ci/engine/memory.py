"""Give freed heap memory back to the kernel (glibc's ``malloc_trim``).

crfsuite keeps a training set as many small ``malloc`` blocks; freed, they stay in the process's heap (its
RSS) until something trims it, and a later step (the intent fit at 100k examples) then peaks on top of
them. Called after a large C structure is freed; a no-op where there is no glibc."""
from __future__ import annotations

import ctypes


def trim() -> None:
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
