"""How many processes a parallel step may use: the container's CPU limit, or ``NLU_CI_WORKERS``.

A pod with ``resources.limits.cpu: 2`` on a 32-core node sees 32 CPUs in ``os.cpu_count()`` but may use
two: the kernel throttles the rest (CFS quota). So the limit is read where the kernel keeps it:
cgroup v2 ``cpu.max`` ("QUOTA PERIOD" or "max PERIOD"), else cgroup v1 ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``; never more than the CPUs this process may run on (``sched_getaffinity``).
A fractional quota rounds up (1.5 CPUs: 2 processes, each throttled a little, beat one).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
_override = 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def quota(root: Path = CGROUP) -> float | None:
    """The CPU limit in CPUs from the cgroup, or None when unlimited or unknown."""
    v2 = _read(root / "cpu.max")
    if v2:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                q, period = int(parts[0]), int(parts[1])
                return q / period if q > 0 and period > 0 else None
            except ValueError:
                return None
        return None
    q, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    try:
        q_n, p_n = int(q or "-1"), int(period or "0")
    except ValueError:
        return None
    return q_n / p_n if q_n > 0 and p_n > 0 else None


def available(root: Path = CGROUP) -> int:
    """CPUs this process may use: affinity, capped by the cgroup quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = quota(root)
    if limit is not None:
        n = min(n, math.ceil(limit))
    return max(1, n)


def set_workers(n: int | None) -> None:
    """``--workers`` / ``NLU_CI_WORKERS`` (0 or None: from the CPU limit); called once by the CLI."""
    global _override
    _override = max(0, int(n or 0))


def workers() -> int:
    return _override or available()
