"""What a run writes about itself into the store, once it knows what happened: best effort, never the outcome.

Once ``ACTIVE`` has moved, the run *has* promoted: a ``history.jsonl`` that is a folder or a FIFO, or a full
disk at the append, must not turn that into ``failed`` (exit 1, a retried Job that then says ``skipped``).
``append_or_warn`` records the line or says in the report's ``warnings`` (and ``record_failures``) that it
could not. ``start`` and ``finish`` bracket every run that holds the lock, failed ones too: retention of the
reports (``--keep-reports``), room made on a nearly full volume before anything is written
(``retention.free_space``: old reports go, models never do), the report written (after freeing room once
more if it does not fit) and the history line appended.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nlu_ci.errors import NluCiError
from nlu_ci.registry import retention

log = logging.getLogger(__name__)

REPORT_ROOM = 256 << 10      # bytes a run's report, predictions and review page need at least
NO_MODEL_ROOM = 1 << 20      # what a first model needs, when there is no active model to measure


def _warn(report: dict, what: str, err: BaseException) -> None:
    message = f"{what}: {err}"
    log.warning("%s", message)
    report.setdefault("warnings", []).append(message)
    report.setdefault("record_failures", []).append(message)


def append_or_warn(store, entry: dict[str, Any], report: dict) -> bool:
    """Append ``entry`` to the store's history; a failure is a warning in ``report`` (False), never raised."""
    try:
        store.append_history(entry)
    except (NluCiError, OSError) as err:
        _warn(report, f"the {entry.get('event', 'run')} is not recorded in the history", err)
        return False
    return True


def _size(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*") if folder.is_dir() else []:
        try:
            total += p.lstat().st_size
        except OSError:
            continue
    return total


def room_for_a_run(store) -> int:
    """Bytes a run needs on the volume: a model as big as the active one (or ``NO_MODEL_ROOM``) plus reports."""
    active = store.active_name()
    model = _size(store.dir / active) if active else 0
    return (model + model // 4 if model else NO_MODEL_ROOM) + REPORT_ROOM


def start(settings, store, report: dict) -> None:
    """Under the lock, before the run writes anything: retention of the reports, and room on a full volume."""
    reports = store.dir / "reports"
    retention.prune_reports(reports, settings.keep_reports)
    freed = retention.free_space(reports, room_for_a_run(store))
    if freed:
        report.setdefault("warnings", []).append(
            f"the volume of {store.dir} was nearly full: removed the reports of {len(freed)} old run(s)")


def finish(settings, store, report: dict, stamp: str, history_line: dict) -> None:
    """Write the run's report and its history line; retention of the reports first. Never raises."""
    reports = store.dir / "reports"
    retention.prune_reports(reports, settings.keep_reports, spare=stamp)
    doc = report.to_dict() if hasattr(report, "to_dict") else report  # the typed report or its JSON
    try:
        report["report_path"] = str(store.write_report(doc, stamp))
    except (NluCiError, OSError) as err:  # a full volume: free what retention allows, then once more
        retention.free_space(reports, REPORT_ROOM, spare=stamp)
        try:
            report["report_path"] = str(store.write_report(doc, stamp))
        except (NluCiError, OSError):
            _warn(report, "cannot record the run in the store", err)
    append_or_warn(store, history_line, report)
