"""Memory of a whole process tree (the job and every training child it forks), sampled from /proc.

Why sampled: the job trains in forked children (``nlu_ci.engine.child``), so the job's own ``ru_maxrss``
misses them, and ``RUSAGE_CHILDREN`` gives only the largest single child. No cgroup of our own is available
here (the memory cgroup v1 this runs in belongs to the machine's session tooling, and there is no cgroup v2
``memory.peak``), so a thread reads every process of the tree every ``interval`` seconds:

- ``pss``: the sum of each process's proportional set size (``/proc/PID/smaps_rollup``): a page shared by
  N processes (a fork's copy-on-write pages) counts 1/N in each, so the sum is what the tree really holds,
  close to what a pod's memory cgroup is charged for anonymous memory;
- ``rss``: the sum of resident set sizes (shared pages counted in every process: an upper bound).

The peak of each sum over the samples is reported; a spike shorter than ``interval`` can be missed.
"""
from __future__ import annotations

import os
import threading
import time


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:
            pass
    return out


def tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        todo += _children(pid)
    return seen


def _kib(path: str, keys: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open(path) as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in keys:
                    found[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found


def sample(root: int) -> tuple[float, float, int]:
    """(PSS MB, RSS MB, processes) of the tree now."""
    pss = rss = 0
    pids = tree(root)
    for pid in pids:
        pss += _kib(f"/proc/{pid}/smaps_rollup", ("Pss",)).get("Pss", 0)
        rss += _kib(f"/proc/{pid}/status", ("VmRSS",)).get("VmRSS", 0)
    return pss / 1024.0, rss / 1024.0, len(pids)


class Sampler:
    """Samples the tree under ``root`` in a thread until ``stop()``; ``mark(name)`` notes the tree's memory
    at a moment (e.g. a stage's start line in the job's log)."""

    def __init__(self, root: int, interval: float = 0.1):
        self.root, self.interval = root, interval
        self.peak_pss = self.peak_rss = 0.0
        self.peak_pss_at = 0.0
        self.max_processes = 0
        self.marks: list[dict] = []
        self.t0 = time.monotonic()
        self._last = (0.0, 0.0, 0)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            pss, rss, n = sample(self.root)
            if n and rss:
                self._last = (pss, rss, n)
                if pss > self.peak_pss:
                    self.peak_pss, self.peak_pss_at = pss, time.monotonic() - self.t0
                self.peak_rss = max(self.peak_rss, rss)
                self.max_processes = max(self.max_processes, n)
            self._done.wait(self.interval)

    def mark(self, name: str) -> None:
        pss, rss, n = sample(self.root)
        self.marks.append({"at_s": round(time.monotonic() - self.t0, 1), "what": name, "pss_mb": round(pss, 1),
                           "rss_mb": round(rss, 1), "processes": n})

    def stop(self) -> dict:
        self._done.set()
        self._thread.join()
        return {"peak_pss_mb": round(self.peak_pss, 1), "peak_rss_sum_mb": round(self.peak_rss, 1),
                "peak_at_s": round(self.peak_pss_at, 1), "max_processes": self.max_processes,
                "interval_s": self.interval, "marks": self.marks}
