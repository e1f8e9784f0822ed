"""Prometheus gauges from a run report (docs/observability.md lists them).

``build_registry(report, previous)`` turns one run report into gauges in a private ``CollectorRegistry``.
Because a Pushgateway PUT replaces the whole group, the two timestamps that must survive runs which do not
renew them (``nlu_ci_last_success_timestamp_seconds``, ``nlu_ci_last_promotion_timestamp_seconds``) are
carried forward (``previous``; ``carried.py`` reads the earlier values). Labels are only project (grouping
key), model, outcome, stage and check: metrics never carry a secret.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from nlu_ci.report.model import OUTCOMES, RunReport
from nlu_ci.report.views import mcnemar_p_value, number

SUCCESS_OUTCOMES = frozenset({"promoted", "rejected", "skipped", "dry_run"})  # a completed run
PROMOTION_OUTCOMES = frozenset({"promoted"})

LAST_SUCCESS = "nlu_ci_last_success_timestamp_seconds"
LAST_PROMOTION = "nlu_ci_last_promotion_timestamp_seconds"

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
    "nlu_ci_active_model_info": ("1 for the model that is active after the last run (the serving alerts "
                                 "compare it with what each pod serves).", ("model",)),
    "nlu_ci_active_intent_f1": ("Held-out F1 per intent of the model that is active after the last run "
                                "(intents of its own test set).", ("intent",)),
    "nlu_ci_fallback_coverage": ("Share of in-scope held-out messages the model answers at the threshold that "
                                 "reaches the policy's target precision (0 when none does).", ("model",)),
    "nlu_ci_fallback_recommended_threshold": ("The lowest fallback threshold at which the model's answers reach "
                                              "the target precision (absent when none does).", ("model",)),
    "nlu_ci_out_of_scope_answered": ("Out-of-scope messages the model answers at the policy's fallback threshold "
                                     "(they should fall back).", ("model",)),
    "nlu_ci_live_messages": ("Unique production messages candidate and active both predicted in the last run "
                             "(with --messages only; docs/inbox.md).", ()),
    "nlu_ci_live_disagreement": ("Share of those messages on which candidate and active predict different "
                                 "intents (absent when none was compared).", ()),
    "nlu_ci_inbox_messages": ("Production messages the last run read for the inbox, by kind: read, "
                              "training_examples (already in the data), unique (after near-duplicates collapsed), "
                              "left_out (beyond the inbox's size) and listed (the run's top entries).", ("kind",)),
}


def active_after(report: RunReport):
    """The scores of the model active once the run ended: the candidate when it was promoted, else the
    active one (None when there is none, or the run did not get that far)."""
    if report.outcome == "promoted" and report.candidate is not None:
        return report.candidate
    return report.active  # a rollback republishes the last report with the rolled-back-to model here


def timestamp(value: Any) -> float | None:
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


def run_timestamp(report: RunReport) -> float:
    """When the run finished: ``finished_at``, else ``started_at`` + total duration, else now."""
    finished = timestamp(report.finished_at)
    if finished is not None:
        return finished
    started = timestamp(report.started_at)
    total = number(report.durations.get("total"))
    if started is not None:
        return started + (total or 0.0)
    return time.time()


def carried_timestamps(report: RunReport, previous: Mapping[str, Any] | None) -> dict[str, float | None]:
    """The last-success and last-promotion timestamps after this run: this run's finish time when it
    renews them, otherwise the previous value (None when never)."""
    previous = previous or {}
    finished = run_timestamp(report)
    outcome = report.outcome
    last_success = timestamp(previous.get("last_success"))
    last_promotion = timestamp(previous.get("last_promotion"))
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


def build_registry(report: RunReport, previous: Mapping[str, Any] | None = None) -> CollectorRegistry:
    """All gauges for one run report, in a new registry (nothing global is touched).

    ``previous``: ``{"last_success": ts | None, "last_promotion": ts | None}`` (Unix seconds or ISO 8601)
    for the two timestamps this run may not renew. A series whose value the report does not have
    (no candidate on a failed run, no p-value without a significance check) is left out, not set to 0.
    """
    registry = CollectorRegistry(auto_describe=True)
    # A gauge without labels always exposes a sample (0 until set): those are created only when there is a
    # value, else a never-promoted project would show a promotion at 1970 and a run without a p-value p=0.
    gauges = _LazyGauges(registry)

    report = RunReport.coerce(report)
    for model, scores in (("candidate", report.candidate), ("active", report.active)):
        for value, metric in ((scores.intent_f1, "nlu_ci_intent_f1"), (scores.entity_f1, "nlu_ci_entity_f1")) \
                if scores is not None else ():
            if number(value) is not None:
                gauges[metric].labels(model=model).set(number(value))

    for name in OUTCOMES:
        gauges["nlu_ci_run_outcome"].labels(outcome=name).set(1 if name == report.outcome else 0)

    durations = report.durations
    for stage, seconds in durations.items():
        value = number(seconds)
        if stage != "total" and value is not None:
            gauges["nlu_ci_stage_duration_seconds"].labels(stage=str(stage)).set(value)
    total = number(durations.get("total"))
    if total is None:
        started, finished = timestamp(report.started_at), timestamp(report.finished_at)
        total = finished - started if started is not None and finished is not None else None
    if total is not None:
        gauges["nlu_ci_run_duration_seconds"].set(total)

    gauges["nlu_ci_last_run_timestamp_seconds"].set(run_timestamp(report))
    carried = carried_timestamps(report, previous)
    if carried["last_success"] is not None:
        gauges[LAST_SUCCESS].set(carried["last_success"])
    if carried["last_promotion"] is not None:
        gauges[LAST_PROMOTION].set(carried["last_promotion"])

    data = report.data
    for value, metric in ((data.train_examples, "nlu_ci_training_examples"),
                          (data.test_examples, "nlu_ci_test_examples"),
                          (data.repaired_examples, "nlu_ci_data_repaired_examples")) if data is not None else ():
        if number(value) is not None:
            gauges[metric].set(number(value))

    p_value = mcnemar_p_value(report)
    if p_value is not None:
        gauges["nlu_ci_mcnemar_p_value"].set(p_value)

    for check in report.decision.checks if report.decision is not None else []:
        if check.name and check.enabled:
            gauges["nlu_ci_gate_check_passed"].labels(check=str(check.name)).set(1 if check.passed else 0)

    _fallback(gauges, report)

    active = active_after(report)
    if active is not None and active.model:
        gauges["nlu_ci_active_model_info"].labels(model=str(active.model)).set(1)
        per_intent = active.per_intent if isinstance(active.per_intent, Mapping) else {}
        for intent, row in per_intent.items():
            f1 = number(row.get("f1")) if isinstance(row, Mapping) else None
            if f1 is not None:
                gauges["nlu_ci_active_intent_f1"].labels(intent=str(intent)).set(f1)

    live = report.sections.get("live")  # counts only: no label or value from a message
    if isinstance(live, Mapping):
        if number(live.get("messages")) is not None:
            gauges["nlu_ci_live_messages"].set(number(live["messages"]))
        if number(live.get("disagreement")) is not None:
            gauges["nlu_ci_live_disagreement"].set(number(live["disagreement"]))
        _inbox(gauges, live)
    return registry


def _inbox(gauges: _LazyGauges, live: Mapping) -> None:
    """Counts of the live section's inbox (messages/live.py ``top_inbox``): numbers only, never a message."""
    inbox = live.get("inbox") if isinstance(live.get("inbox"), Mapping) else None
    counts = {"read": live.get("read")}
    if inbox is not None:
        entries = inbox.get("entries")
        counts.update(training_examples=inbox.get("training_examples"), unique=inbox.get("unique"),
                      left_out=inbox.get("left_out"), listed=len(entries) if isinstance(entries, list) else None)
    for kind, value in counts.items():
        if number(value) is not None:
            gauges["nlu_ci_inbox_messages"].labels(kind=kind).set(number(value))




def _fallback(gauges: _LazyGauges, report: RunReport) -> None:
    """The ``fallback`` section (gate/fallback.py): coverage and threshold at the target precision, out-of-scope
    messages answered at the policy threshold, per model."""
    fb = report.fallback
    for model in ("candidate", "active") if fb is not None else ():
        part = fb.model(model)
        recommended = part.get("recommended") if isinstance(part.get("recommended"), Mapping) else {}
        for value, metric in ((recommended.get("coverage"), "nlu_ci_fallback_coverage"),
                              (recommended.get("threshold"), "nlu_ci_fallback_recommended_threshold"),
                              (part.get("out_of_scope_answered"), "nlu_ci_out_of_scope_answered")):
            if number(value) is not None:
                gauges[metric].labels(model=model).set(number(value))
