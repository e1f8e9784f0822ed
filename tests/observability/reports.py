"""Run reports as ``nlu_ci.pipeline`` writes them (keys: docs/architecture.md), for tests of metrics/notify."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 20, 2, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def scores(model: str, intent_f1: float, entity_f1: float | None = 0.8) -> dict[str, Any]:
    return {"model": model, "path": f"/models/p/{model}", "intent_f1": intent_f1, "intent_accuracy": intent_f1 + 0.01,
            "intent_macro_f1": intent_f1 - 0.02, "intent_precision": intent_f1 + 0.005, "entity_f1": entity_f1,
            "entity_precision": entity_f1, "entity_recall": entity_f1, "per_intent": {}}


def make_report(outcome: str, *, day: int = 0, project: str = "p", candidate: float | None = 0.9,
                active: float | None = 0.85, p_value: float | None = 0.03, train: int = 400, test: int = 100,
                failed_check: str | None = None, error: str | None = None, entity_f1: float | None = 0.8,
                durations: dict[str, float] | None = None) -> dict[str, Any]:
    started = T0 + timedelta(days=day)
    durations = dict(durations or {"lock": 0.01, "load": 0.5, "split": 0.1, "train": 42.0, "evaluate": 3.5,
                                   "decide": 0.25})
    durations["total"] = round(sum(durations.values()) + 0.5, 3)
    checks = []
    if candidate is not None:
        checks.append({"name": "min_intent_f1", "passed": True, "detail": f"intent F1 {candidate:.4f} >= 0.5000",
                       "values": {"candidate": candidate, "min": 0.5}, "enabled": True})
        if p_value is not None:
            checks.append({"name": "significance", "passed": failed_check != "significance",
                           "detail": f"McNemar b=3 c=12 p={p_value:.4f}",
                           "values": {"b": 3, "c": 12, "p_value": p_value, "alpha": 0.05}, "enabled": True})
        checks.append({"name": "bootstrap_ci", "passed": True, "detail": "report only", "values": {},
                       "enabled": False})
        if failed_check and failed_check != "significance":
            checks.append({"name": failed_check, "passed": False, "detail": f"{failed_check} failed: 0.61 < 0.80",
                           "values": {"value": 0.61}, "enabled": True})
    decision = None
    if candidate is not None and outcome in ("promoted", "rejected", "dry_run"):
        decision = {"promote": outcome == "promoted",
                    "reason": "candidate improves intent F1" if outcome == "promoted" else "check failed",
                    "checks": checks}
    return {
        "outcome": outcome, "project": project, "started_at": iso(started),
        "finished_at": iso(started + timedelta(seconds=durations["total"])),
        "error": error, "exit_code": 1 if outcome == "failed" else 0,
        "data": {"fingerprint": "sha256:abc", "train_examples": train, "test_examples": test,
                 "intents": ["greet", "goodbye", "affirm"], "split": {}, "source": "data/nlu.json",
                 "repaired_examples": 2},
        "candidate": scores("model_20261120-020000", candidate, entity_f1) if candidate is not None else None,
        "active": scores("model_20261119-020000", active, entity_f1) if active is not None else None,
        "decision": decision,
        "durations": durations,
    }


def finished(report: dict) -> float:
    return datetime.fromisoformat(report["finished_at"].replace("Z", "+00:00")).timestamp()
