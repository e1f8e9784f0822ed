"""Prometheus metrics from a run report: a textfile in the store, and a push to a Pushgateway.

``build_registry(report, previous)`` turns one run report (docs/architecture.md, "Run report") into
gauges in a private ``CollectorRegistry``; ``publish(report, ...)`` always writes them atomically to
``<store_dir>/metrics.prom`` and, when a Pushgateway URL is given, pushes them (HTTP PUT, job
``nlu_ci``, grouping key ``{"project": <project>}``) so that the group holds exactly this run's series.

Because a PUT replaces the whole group, the two timestamps that must survive runs which do not renew
them (``nlu_ci_last_success_timestamp_seconds``, ``nlu_ci_last_promotion_timestamp_seconds``) are
carried forward: from ``previous`` (optional, from the caller), the previous ``metrics.prom`` and the
``history.jsonl`` in the store; the newest of the known values wins.

Metrics never carry a secret: labels are only project (grouping key), model, outcome, stage and check.
A push that fails is a warning (URL redacted) unless ``strict=True``, which raises ``RuntimeFailure``.
A ``locked`` run pushes nothing (it did no work; the run holding the lock pushes its own outcome).
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler
from prometheus_client.parser import text_string_to_metric_families

from nlu_ci import deadline, safeio
from nlu_ci.errors import NluCiError, RuntimeFailure
from nlu_ci.redact import redact, register

log = logging.getLogger(__name__)

JOB = "nlu_ci"
TEXTFILE_NAME = "metrics.prom"
HISTORY_NAME = "history.jsonl"
OUTCOMES = ("promoted", "rejected", "skipped", "locked", "failed", "dry_run")
SUCCESS_OUTCOMES = frozenset({"promoted", "rejected", "skipped", "dry_run"})  # a completed run
PROMOTION_OUTCOMES = frozenset({"promoted"})
MODELS = ("candidate", "active")

LAST_SUCCESS = "nlu_ci_last_success_timestamp_seconds"
LAST_PROMOTION = "nlu_ci_last_promotion_timestamp_seconds"
MAX_CLOCK_SKEW = 300.0  # seconds: a carried timestamp later than now + this came from a wrong clock

# name -> (help, label names); the single list of what this module exports (docs/observability.md)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nlu_ci_intent_f1": ("Intent classification weighted F1 on the held-out test set.", ("model",)),
    "nlu_ci_entity_f1": ("Entity extraction F1 on the held-out test set (absent when there are no entities).",
                         ("model",)),
    "nlu_ci_run_outcome": ("1 for the outcome of the last run, 0 for the other outcomes.", ("outcome",)),
    "nlu_ci_stage_duration_seconds": ("Wall-clock seconds each stage of the last run took.", ("stage",)),
    "nlu_ci_run_duration_seconds": ("Wall-clock seconds the whole last run took.", ()),
    "nlu_ci_last_run_timestamp_seconds": ("Unix time the last run finished (any outcome).", ()),
    LAST_SUCCESS: ("Unix time the last completed run finished (promoted, rejected, skipped or dry_run).", ()),
    LAST_PROMOTION: ("Unix time a candidate was last promoted to the active model.", ()),
    "nlu_ci_training_examples": ("Training examples used by the last run.", ()),
    "nlu_ci_test_examples": ("Held-out test examples used by the last run.", ()),
    "nlu_ci_data_repaired_examples": ("Examples (training and test) whose entity annotations the last run "
                                      "trimmed or dropped (README 'Training data').", ()),
    "nlu_ci_mcnemar_p_value": ("McNemar test p-value, candidate vs active on the same test set.", ()),
    "nlu_ci_gate_check_passed": ("1 if the enabled promotion-gate check passed in the last run, else 0.",
                                 ("check",)),
}


@dataclass
class PublishResult:
    """What ``publish`` did. ``push_error``/``textfile_error`` are one-line, redacted messages."""

    textfile: Path | None = None          # the metrics.prom written, None if writing failed
    textfile_error: str | None = None
    push_attempted: bool = False          # False when no Pushgateway URL was configured
    pushed: bool = False
    push_error: str | None = None
    url: str | None = None                # the Pushgateway URL with credentials removed and redacted

    @property
    def ok(self) -> bool:
        return self.textfile_error is None and (self.pushed or not self.push_attempted)


# ---------------------------------------------------------------------------------------------------
# report -> registry


def _timestamp(value: Any) -> float | None:
    """ISO 8601 (``Z`` or offset; naive means UTC) or a number -> Unix seconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _section(report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = report.get(key)
    return value if isinstance(value, Mapping) else {}


def mcnemar_p_value(report: Mapping[str, Any]) -> float | None:
    """The gate's McNemar p-value: check ``significance``'s ``values.p_value`` (or ``p``), else
    ``statistics.mcnemar.p_value``; None when the run has none."""
    for check in _section(report, "decision").get("checks") or []:
        if isinstance(check, Mapping) and check.get("name") == "significance":
            values = check.get("values") or {}
            p_value = _number(values.get("p_value", values.get("p")))
            if p_value is not None:
                return p_value
    mcnemar = _section(_section(report, "statistics"), "mcnemar")
    return _number(mcnemar.get("p_value"))


def run_timestamp(report: Mapping[str, Any]) -> float:
    """When the run finished: ``finished_at``, else ``started_at`` + total duration, else now."""
    finished = _timestamp(report.get("finished_at"))
    if finished is not None:
        return finished
    started = _timestamp(report.get("started_at"))
    total = _number(_section(report, "durations").get("total"))
    if started is not None:
        return started + (total or 0.0)
    return time.time()


def carried_timestamps(report: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The last-success and last-promotion timestamps after this run: this run's finish time when it
    renews them, otherwise the previous value (None when never)."""
    previous = previous or {}
    finished = run_timestamp(report)
    outcome = report.get("outcome")
    last_success = _timestamp(previous.get("last_success"))
    last_promotion = _timestamp(previous.get("last_promotion"))
    if outcome in SUCCESS_OUTCOMES:
        last_success = max(finished, last_success or finished)
    if outcome in PROMOTION_OUTCOMES:
        last_promotion = max(finished, last_promotion or finished)
    return {"last_success": last_success, "last_promotion": last_promotion}


class _LazyGauges(dict):
    """name -> Gauge, registered in ``registry`` on first use."""

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self.registry = registry

    def __missing__(self, name: str) -> Gauge:
        help_text, labels = METRICS[name]
        gauge = self[name] = Gauge(name, help_text, labels, registry=self.registry)
        return gauge


def build_registry(report: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> CollectorRegistry:
    """All gauges for one run report, in a new registry (nothing global is touched).

    ``previous``: ``{"last_success": ts | None, "last_promotion": ts | None}`` (Unix seconds or ISO 8601)
    for the two timestamps this run may not renew. A series whose value the report does not have
    (no candidate on a failed run, no p-value without a significance check) is left out, not set to 0.
    """
    registry = CollectorRegistry(auto_describe=True)
    # A gauge without labels always exposes a sample (0 until set): those are created only when there is a
    # value, else a never-promoted project would show a promotion at 1970 and a run without a p-value p=0.
    gauges = _LazyGauges(registry)

    for model in MODELS:
        scores = _section(report, model)
        for key, metric in (("intent_f1", "nlu_ci_intent_f1"), ("entity_f1", "nlu_ci_entity_f1")):
            value = _number(scores.get(key))
            if value is not None:
                gauges[metric].labels(model=model).set(value)

    outcome = report.get("outcome")
    for name in OUTCOMES:
        gauges["nlu_ci_run_outcome"].labels(outcome=name).set(1 if name == outcome else 0)

    durations = _section(report, "durations")
    for stage, seconds in durations.items():
        value = _number(seconds)
        if stage != "total" and value is not None:
            gauges["nlu_ci_stage_duration_seconds"].labels(stage=str(stage)).set(value)
    total = _number(durations.get("total"))
    if total is None:
        started, finished = _timestamp(report.get("started_at")), _timestamp(report.get("finished_at"))
        total = finished - started if started is not None and finished is not None else None
    if total is not None:
        gauges["nlu_ci_run_duration_seconds"].set(total)

    gauges["nlu_ci_last_run_timestamp_seconds"].set(run_timestamp(report))
    carried = carried_timestamps(report, previous)
    if carried["last_success"] is not None:
        gauges[LAST_SUCCESS].set(carried["last_success"])
    if carried["last_promotion"] is not None:
        gauges[LAST_PROMOTION].set(carried["last_promotion"])

    data = _section(report, "data")
    for key, metric in (("train_examples", "nlu_ci_training_examples"), ("test_examples", "nlu_ci_test_examples"),
                        ("repaired_examples", "nlu_ci_data_repaired_examples")):
        value = _number(data.get(key))
        if value is not None:
            gauges[metric].set(value)

    p_value = mcnemar_p_value(report)
    if p_value is not None:
        gauges["nlu_ci_mcnemar_p_value"].set(p_value)

    for check in _section(report, "decision").get("checks") or []:
        if isinstance(check, Mapping) and check.get("name") and check.get("enabled", True):
            gauges["nlu_ci_gate_check_passed"].labels(check=str(check["name"])).set(1 if check.get("passed") else 0)
    return registry


# ---------------------------------------------------------------------------------------------------
# textfile + push


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
            if sample.name in names and _number(sample.value) is not None:
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
        when = _timestamp(entry.get("finished_at") or entry.get("at"))
        if when is None or when > future:  # a line from a node whose clock ran ahead: never carried forward
            continue
        success = entry.get("event") == "run" and entry.get("outcome") in SUCCESS_OUTCOMES
        promotion = entry.get("event") == "promotion" or (entry.get("event") == "run"
                                                          and entry.get("outcome") in PROMOTION_OUTCOMES)
        for key, hit in (("last_success", success), ("last_promotion", promotion)):
            if hit and (found[key] is None or when > found[key]):
                found[key] = when
    return found


def _merge_previous(*sources: Mapping[str, Any] | None, now: float | None = None) -> dict[str, float | None]:
    """The newest known value of each carried timestamp, none from the future (a wrong clock would else be
    carried forward forever, and "no success in 26 h" could never fire again)."""
    merged: dict[str, float | None] = {"last_success": None, "last_promotion": None}
    limit = (time.time() if now is None else now) + MAX_CLOCK_SKEW
    for source in sources:
        for key in merged:
            value = _timestamp((source or {}).get(key))
            if value is not None and value > limit:
                log.warning("ignoring %s %s: it is in the future (a clock was wrong); not carried forward",
                            key, datetime.fromtimestamp(min(value, 253402300799), UTC).isoformat())
                continue
            if value is not None and (merged[key] is None or value > merged[key]):
                merged[key] = value
    return merged


def safe_url(url: str) -> str:
    """The URL as it may appear in a log line: no user:password, registered secrets masked."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            url = urlunsplit((parts.scheme, host, parts.path, "", ""))
        else:
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        url = "<invalid URL>"
    return redact(url)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return redact(f"{type(err).__name__}: {text}")


def push(registry: CollectorRegistry, project: str, url: str, *, username: str | None = None,
         password: str | None = None, timeout: float = 5.0) -> None:
    """PUT the registry to the Pushgateway group ``job=nlu_ci, project=<project>``; raises on failure.

    Credentials embedded in the URL (``https://user:pass@host``) are used for basic auth as well."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.password is not None:
        register(parts.password)
        username = username if username is not None else parts.username
        password = password if password is not None else parts.password
        host = parts.hostname or ""
        url = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))
    if password:
        register(password)
        handler = partial(basic_auth_handler, username=username or "", password=password)
    else:
        handler = default_handler
    push_to_gateway(url, job=JOB, registry=registry, grouping_key={"project": project},
                    timeout=timeout, handler=handler)


def publish(report: Mapping[str, Any], *, store_dir: Path, pushgateway_url: str | None,
            username: str | None = None, password: str | None = None, timeout: float = 5.0,
            strict: bool = False, previous: Mapping[str, Any] | None = None,
            history: list[Any] | None = None) -> PublishResult:
    """Write ``<store_dir>/metrics.prom`` (always; atomic) and push to the Pushgateway if a URL is given.

    The carried timestamps come from ``previous``, the existing ``metrics.prom`` and the store's history
    (``history`` entries when given, else ``history.jsonl`` read here; newest wins).
    Failures are logged as one-line warnings and reported in the result; with ``strict=True`` a failed
    push or textfile write raises ``RuntimeFailure`` (after the other one was still attempted).
    """
    store_dir = Path(store_dir)
    textfile = store_dir / TEXTFILE_NAME
    project = str(report.get("project") or "default")
    carried = history_timestamps(history) if history is not None else read_history(store_dir / HISTORY_NAME)
    registry = build_registry(report, _merge_previous(previous, read_previous(textfile), carried))
    result = PublishResult()

    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
        result.textfile = textfile
    except OSError as err:
        result.textfile_error = f"cannot write metrics file {textfile}: {_one_line(err)}"
        log.warning("%s", result.textfile_error)

    if pushgateway_url and report.get("outcome") == "locked":
        # another run holds the store and will push its own outcome: a PUT now would replace that
        # project's group (wipe its F1 series, clear a failed run's alert) with a run that did nothing
        log.info("locked run: nothing pushed to the Pushgateway (the run holding the lock pushes)")
    elif pushgateway_url:
        result.push_attempted = True
        result.url = safe_url(pushgateway_url)
        try:
            deadline.run(lambda: push(registry, project, pushgateway_url, username=username, password=password,
                                      timeout=timeout), 2 * timeout, what="push")  # a trickled answer: total deadline
            result.pushed = True
            log.info("metrics pushed to %s (job=%s, project=%s)", result.url, JOB, project)
        except Exception as err:  # urllib raises URLError/HTTPError/OSError/ValueError/timeout
            result.push_error = f"cannot push metrics to Pushgateway {result.url}: {_one_line(err)}"
            log.warning("%s", result.push_error)

    if strict and not result.ok:
        raise RuntimeFailure(result.push_error or result.textfile_error or "metrics not published")
    return result
