"""Output channels: what a finished run tells the world (metrics, Slack, an Event on the Job, ...).

A channel is built from settings by a factory registered in ``outputs/channels.py``, reads the typed run
report (``report.model.RunReport``) and returns one section of it: ``publish(report, record) -> dict | None``,
stored under ``report.sections[channel.key]``.
It gets what it needs passed in (``RunRecord``: the store's paths, the run's stamp, the history, how to
save a file); it never reaches into the store. A channel never raises, except the metrics channel under
``--strict-metrics`` (an ``NluCiError``: the run then fails with exit 1).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class RunRecord:
    """Where a run is recorded, for channels that write files or read earlier runs."""

    store_dir: Path
    reports_dir: Path
    stamp: str
    history: list[dict[str, Any]] = field(default_factory=list)
    save: Callable[[Path, str], None] | None = None  # writes a file of the run atomically (the store's way)


class Channel(Protocol):
    key: str  # the report section it fills

    def publish(self, report: Any, record: RunRecord) -> dict[str, Any] | None: ...  # report: a RunReport
