"""A job's processes from /proc: its children, and a signal sent while its training child runs."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from proctree import _children as children  # noqa: E402  (bench's /proc reader: a pid's children alive now)


def training_children(proc, within: float = 30.0) -> list[int]:
    """``proc``'s children as soon as there are any (its training child, forked for the fit)."""
    end = time.monotonic() + within
    while time.monotonic() < end and proc.poll() is None:
        seen = children(proc.pid)
        if seen:
            return seen
        time.sleep(0.002)
    raise AssertionError(f"no training child of {proc.pid} within {within} s")


def signal_while_training(proc, sig: int, within: float = 30.0) -> list[int]:
    """Send ``sig`` to ``proc`` (a job past its ``stage train: started`` line) as soon as its training child
    (``engine.child``: forked for the fit) is seen: inside the fit whatever the machine's speed, where a fixed
    delay lands after a fast training (the sample trains in ~0.2 s). Returns the children seen."""
    seen = training_children(proc, within)
    proc.send_signal(sig)
    return seen
