"""Where the carried timestamps come from: an earlier ``metrics.prom`` and the store's run history (newest wins,
none from the future)."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from nlu_ci import safeio
from nlu_ci.errors import NluCiError
from nlu_ci.outputs.prometheus.gauges import (
    LAST_PROMOTION,
    LAST_SUCCESS,
    PROMOTION_OUTCOMES,
    SUCCESS_OUTCOMES,
    timestamp,
)
from nlu_ci.redact import redact
from nlu_ci.report.views import number

log = logging.getLogger("nlu_ci.outputs.prometheus")

MAX_CLOCK_SKEW = 300.0  # seconds: a carried timestamp later than now + this came from a wrong clock


def read_previous(textfile: Path) -> dict[str, float | None]:
    """The carried timestamps from an earlier ``metrics.prom`` (missing or unreadable: Nones)."""
    found: dict[str, float | None] = {"last_success": None, "last_promotion": None}
    try:  # never a FIFO, never unbounded
        text = safeio.read_text(textfile, "metrics file", kind="metadata") if Path(textfile).exists() else ""
        families = list(text_string_to_metric_families(text))
    except (NluCiError, ValueError) as err:
        log.warning("ignoring unreadable %s: %s", textfile, redact(err))
        return found
    names = {LAST_SUCCESS: "last_success", LAST_PROMOTION: "last_promotion"}
    for family in families:
        for sample in family.samples:
            if sample.name in names and number(sample.value) is not None:
                found[names[sample.name]] = float(sample.value)
    return found


def read_history(history_file: Path) -> dict[str, float | None]:
    """The carried timestamps from the store's ``history.jsonl`` (see ``history_timestamps``)."""
    if not Path(history_file).exists():
        return {"last_success": None, "last_promotion": None}
    try:
        raw = safeio.read_bytes(history_file, "run history", kind="history")  # never a FIFO, bounded
    except NluCiError as err:
        log.warning("ignoring unreadable %s: %s", history_file, redact(err))
        return {"last_success": None, "last_promotion": None}
    entries = []
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            entries.append(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return history_timestamps(entries)


def history_timestamps(entries: list[Any]) -> dict[str, float | None]:
    """The carried timestamps from history entries (run lines: ``outcome`` + ``finished_at``; promotion
    lines: ``event: promotion`` + ``at``), so they survive a lost or damaged ``metrics.prom``."""
    found: dict[str, float | None] = {"last_success": None, "last_promotion": None}
    future = time.time() + MAX_CLOCK_SKEW
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        when = timestamp(entry.get("finished_at") or entry.get("at"))
        if when is None or when > future:  # a line from a node whose clock ran ahead: never carried forward
            continue
        success = entry.get("event") == "run" and entry.get("outcome") in SUCCESS_OUTCOMES
        promotion = entry.get("event") == "promotion" or (entry.get("event") == "run"
                                                          and entry.get("outcome") in PROMOTION_OUTCOMES)
        for key, hit in (("last_success", success), ("last_promotion", promotion)):
            if hit and (found[key] is None or when > found[key]):
                found[key] = when
    return found


def merge_previous(*sources: Mapping[str, Any] | None, now: float | None = None) -> dict[str, float | None]:
    """The newest known value of each carried timestamp, none from the future (a wrong clock would else be
    carried forward forever, and "no success in 26 h" could never fire again)."""
    merged: dict[str, float | None] = {"last_success": None, "last_promotion": None}
    limit = (time.time() if now is None else now) + MAX_CLOCK_SKEW
    for source in sources:
        for key in merged:
            value = timestamp((source or {}).get(key))
            if value is not None and value > limit:
                log.warning("ignoring %s %s: it is in the future (a clock was wrong); not carried forward",
                            key, datetime.fromtimestamp(min(value, 253402300799), UTC).isoformat())
                continue
            if value is not None and (merged[key] is None or value > merged[key]):
                merged[key] = value
    return merged

