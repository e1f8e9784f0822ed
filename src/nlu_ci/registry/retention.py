"""Retention: which old models and which old run reports go, in every run (failed ones too).

Models are ordered by their **recorded creation** (``created_at`` of ``nlu_ci.json``), not by their folder
name: a node whose clock ran ahead once names a model ``model_2999...``, and ordering by name would keep that
one forever and prune the run's own new model. A creation time later than now + ``FUTURE_SLACK`` cannot be
true: such models sort as the oldest (they were made before the clock was corrected). Never removed: the
active and the previous model, and the model the run committed (``protect``: this run's candidate, kept for
inspection even when it was rejected).

Reports: ``reports/<stamp>.json``, ``.predictions.jsonl`` and ``.html`` of one run are one group; the newest
``keep`` groups stay (``--keep-reports``). ``free_space`` is what a run does when the volume is (nearly)
full: it removes report groups down to the newest ``MIN_REPORTS`` (reports are expendable, models are not;
the active model is never the price).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
from pathlib import Path

from nlu_ci.errors import NluCiError
from nlu_ci.registry.integrity import read_metadata

log = logging.getLogger(__name__)

FUTURE_SLACK = dt.timedelta(minutes=5)
MIN_REPORTS = 3
REPORT_SUFFIXES = (".predictions.jsonl", ".json", ".html")


def _created(folder: Path, now: dt.datetime) -> tuple[int, str]:
    """Sort key: (0 = a time from the future or none readable, 1 = plausible), the ISO time."""
    try:
        created = read_metadata(folder).get("created_at")
        when = dt.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    except (NluCiError, ValueError, TypeError, AttributeError):
        return 0, ""
    return (0 if when > now + FUTURE_SLACK else 1), when.astimezone(dt.UTC).isoformat()


def creation_order(root: Path, names: list[str], now: dt.datetime | None = None) -> list[str]:
    """``names`` (model folders under ``root``) oldest first by recorded creation; ties by name."""
    now = now or dt.datetime.now(dt.UTC)
    return sorted(names, key=lambda n: (*_created(root / n, now), n))


def prune_models(root: Path, names: list[str], keep: int, protect: set, trash_dir: Path) -> list[str]:
    """Delete all but the newest ``keep`` of ``names`` (by creation), never one in ``protect``. Each goes by an
    atomic rename into ``trash_dir`` first (never half a model under a model name)."""
    ordered = creation_order(root, names)
    doomed = [n for n in ordered[:-keep] if n not in protect] if keep > 0 else []
    removed = []
    for name in doomed:
        trash = trash_dir / f"trash.{name}.{os.getpid()}"
        try:
            os.rename(root / name, trash)
        except OSError as err:
            log.warning("retention: cannot remove %s: %s", name, err.strerror or err)
            continue
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(name)
    return removed


def report_groups(reports: Path) -> dict[str, list[Path]]:
    """``{stamp: [its files]}`` of a reports folder (files of other names are left alone)."""
    groups: dict[str, list[Path]] = {}
    try:
        entries = list(os.scandir(reports))
    except OSError:
        return {}
    for entry in entries:
        for suffix in REPORT_SUFFIXES:
            if entry.name.endswith(suffix) and not entry.name.startswith("."):
                groups.setdefault(entry.name[: -len(suffix)], []).append(Path(entry.path))
                break
    return groups


def prune_reports(reports: Path, keep: int, spare: str | None = None) -> list[str]:
    """Remove the report groups of all but the newest ``keep`` runs (never ``spare``, this run's stamp)."""
    groups = report_groups(reports)
    doomed = [s for s in sorted(groups)[:-keep] if s != spare] if keep > 0 else []
    for stamp in doomed:
        for path in groups[stamp]:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                log.warning("retention: cannot remove %s: %s", path, err.strerror or err)
    if doomed:
        log.info("retention: removed the reports of %d old run(s) from %s, kept %d", len(doomed), reports,
                 len(groups) - len(doomed))
    return doomed


def free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def free_space(reports: Path, need: int, spare: str | None = None) -> list[str]:
    """When fewer than ``need`` bytes are free on the volume of ``reports``: remove old report groups (oldest
    first) until ``need`` bytes are free or only ``MIN_REPORTS`` are left. Returns the stamps removed."""
    removed: list[str] = []
    while (free_bytes(reports) or 0) < need:
        groups = report_groups(reports)
        candidates = [s for s in sorted(groups) if s != spare]
        if len(groups) <= MIN_REPORTS or not candidates:
            break
        for path in groups[candidates[0]]:
            with contextlib.suppress(OSError):
                path.unlink()
        if candidates[0] in report_groups(reports):  # could not remove it (permissions): do not loop for ever
            break
        removed.append(candidates[0])
    if removed:
        log.warning("the volume of %s is nearly full: removed the reports of %d old run(s) to make room",
                    reports, len(removed))
    return removed
