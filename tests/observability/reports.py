"""Run reports as ``nlu_ci.pipeline`` builds them (the typed ``RunReport``; keys: docs/architecture.md), for
tests of the channels (metrics, Slack, Event, review page, Markdown summary)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nlu_ci.report.model import CheckResult, DataInfo, DecisionRecord, FallbackInfo, ModelScores, RunReport

T0 = datetime(2026, 11, 20, 2, 0, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def scores(model: str, intent_f1: float, entity_f1: float | None = 0.8) -> ModelScores:
    return ModelScores(model, f"/models/p/{model}", {
        "intent_f1": intent_f1, "intent_accuracy": intent_f1 + 0.01, "intent_macro_f1": intent_f1 - 0.02,
        "intent_precision": intent_f1 + 0.005, "entity_f1": entity_f1, "entity_precision": entity_f1,
        "entity_recall": entity_f1, "per_intent": {}})


def fallback_section(candidate: float, active: float | None) -> FallbackInfo:
    """A ``fallback`` section whose numbers follow the models' F1 (so that runs differ)."""
    def part(f1: float) -> dict:
        return {"threshold": 0.3, "answered": 80, "coverage": round(f1 - 0.1, 4), "precision": round(f1 - 0.05, 4),
                "out_of_scope_answered": int(round((1 - f1) * 40)), "intent_f1": f1 - 0.03, "accuracy": f1 - 0.02,
                "recommended": {"threshold": round(1.2 - f1, 4), "answered": 60, "coverage": round(f1 - 0.25, 4),
                                "precision": 0.9, "out_of_scope_answered": int(round((1 - f1) * 10)),
                                "reached": True}}
    return FallbackInfo(0.3, 0.9, 100, 20, {"test_data": 20, "file": 0, "path": None}, part(candidate),
                        part(active) if active is not None else None)


def make_report(outcome: str, *, day: int = 0, project: str = "p", candidate: float | None = 0.9,
                active: float | None = 0.85, p_value: float | None = 0.03, train: int = 400, test: int = 100,
                failed_check: str | None = None, error: str | None = None, entity_f1: float | None = 0.8,
                durations: dict[str, float] | None = None) -> RunReport:
    started = T0 + timedelta(days=day)
    durations = dict(durations or {"lock": 0.01, "load": 0.5, "split": 0.1, "train": 42.0, "evaluate": 3.5,
                                   "decide": 0.25})
    durations["total"] = round(sum(durations.values()) + 0.5, 3)
    checks = []
    if candidate is not None:
        checks.append(CheckResult("min_intent_f1", True, f"intent F1 {candidate:.4f} >= 0.5000",
                                  {"candidate": candidate, "min": 0.5}))
        if p_value is not None:
            checks.append(CheckResult("significance", failed_check != "significance", f"McNemar b=3 c=12 p={p_value:.4f}",
                                      {"b": 3, "c": 12, "p_value": p_value, "alpha": 0.05}))
        checks.append(CheckResult("bootstrap_ci", True, "report only", {}, enabled=False))
        if failed_check and failed_check != "significance":
            checks.append(CheckResult(failed_check, False, f"{failed_check} failed: 0.61 < 0.80", {"value": 0.61}))
    decision = None
    if candidate is not None and outcome in ("promoted", "rejected", "dry_run"):
        decision = DecisionRecord(outcome == "promoted",
                                  "candidate improves intent F1" if outcome == "promoted" else "check failed", checks)
    data = DataInfo("sha256:abc", "data/nlu.json", None, train, test, ["greet", "goodbye", "affirm"], {},
                    quality={"repaired_examples": 2}, absent=("examples",))
    return RunReport(
        outcome=outcome, project=project, started_at=iso(started),
        finished_at=iso(started + timedelta(seconds=durations["total"])),
        error=error, exit_code=1 if outcome == "failed" else 0, data=data,
        candidate=scores("model_20261120-020000", candidate, entity_f1) if candidate is not None else None,
        active=scores("model_20261119-020000", active, entity_f1) if active is not None else None,
        decision=decision, durations=durations,
        sections={"fallback": fallback_section(candidate, active)} if candidate is not None else {})


def finished(report: RunReport) -> float:
    return datetime.fromisoformat(report.finished_at.replace("Z", "+00:00")).timestamp()
