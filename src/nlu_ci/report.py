"""The run report: one JSON document per run (keys stable, see docs/architecture.md) and a human summary."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nlu_ci.redact import redact
from nlu_ci.registry.store import atomic_write_text

OUTCOMES = ("promoted", "rejected", "skipped", "locked", "failed", "dry_run")


def new_report(project: str, started_at: str) -> dict[str, Any]:
    return {
        "outcome": None,
        "project": project,
        "started_at": started_at,
        "finished_at": None,
        "error": None,
        "exit_code": None,
        "data": None,
        "candidate": None,
        "active": None,
        "decision": None,
        "durations": {},
        "warnings": [],
    }


def model_section(name: str | None, path: Path | str | None, result=None, **extra: Any) -> dict[str, Any]:
    """``candidate``/``active`` section: model name and path plus the evaluation summary."""
    section: dict[str, Any] = {"model": name, "path": str(path) if path else None}
    keys = ("intent_f1", "intent_accuracy", "intent_macro_f1", "intent_precision", "entity_f1",
            "entity_precision", "entity_recall", "entity_token_f1", "entity_token_precision", "entity_token_accuracy",
            "per_intent")
    summary = result.summary() if result is not None else {}
    for key in keys:
        section[key] = summary.get(key)
    if result is not None:
        section["per_entity"] = summary.get("per_entity")
        section["evaluated_by"] = summary.get("evaluated_by")
    section.update(extra)
    return section


def to_json(report: dict[str, Any]) -> str:
    return redact(json.dumps(report, indent=2, sort_keys=True, default=str))


def write(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, to_json(report) + "\n")


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def summary(report: dict[str, Any]) -> str:
    """A few lines for people: outcome, the numbers compared, failed checks, the error."""
    lines = [f"nlu-ci run [{report.get('project')}]: {str(report.get('outcome')).upper()}"]
    data = report.get("data") or {}
    if data:
        lines.append(f"  data      {data.get('train_examples')} train / {data.get('test_examples')} test examples, "
                     f"{len(data.get('intents') or [])} intents, {data.get('fingerprint', '')[:19]}")
    for role in ("candidate", "active"):
        m = report.get(role)
        if m:
            lines.append(f"  {role:<9} {m.get('model')}: intent F1 {_f(m.get('intent_f1'))}, "
                         f"accuracy {_f(m.get('intent_accuracy'))}, entity F1 {_f(m.get('entity_f1'))}")
    decision = report.get("decision")
    if decision:
        lines.append(f"  decision  {decision.get('verdict') or ('promote' if decision.get('promote') else 'keep active')}: "
                     f"{decision.get('reason')}")
        for check in decision.get("checks") or []:
            if check.get("enabled", True) and not check.get("passed"):
                lines.append(f"    FAILED  {check.get('name')}: {check.get('detail')}")
    if report.get("error"):
        lines.append(f"  error     {report['error']}")
    durations = report.get("durations") or {}
    if durations:
        lines.append("  stages    " + ", ".join(f"{k} {v:.1f}s" for k, v in durations.items()))
    return redact("\n".join(lines))
