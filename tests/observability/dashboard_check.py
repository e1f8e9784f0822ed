"""Check every Grafana panel query against a real Prometheus, with the values a sequence of runs must give.

``expected_panels(reports, i, t, project)`` says, from the run reports alone (not from nlu_ci.outputs.prometheus), what
each panel target must return when evaluated at time ``t`` just after run ``i``; ``check_dashboard`` runs
every target of the dashboard JSON through Prometheus' HTTP API at those times and compares.
"""
from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

from support.servers import MONITORING

SUCCESS = ("promoted", "rejected", "skipped", "dry_run")
Series = dict[frozenset, float]


def load_dashboard(path: Path = MONITORING / "nlu-ci-dashboard.json") -> dict:
    return json.loads(path.read_text())


def _job_panels(dashboard: dict) -> list[dict]:
    """The nightly job's panels: those above the row "Serving" (whose panels read serve's and serve-models'
    series: tests/observability/test_serving_monitoring.py checks them)."""
    panels = dashboard["panels"]
    rows = [i for i, p in enumerate(panels) if p["type"] == "row"]
    return panels[: rows[0]] if rows else panels


def serving_panels(dashboard: dict) -> list[dict]:
    panels = dashboard["panels"]
    return [p for p in panels[len(_job_panels(dashboard)):] if p["type"] != "row"]


def targets(dashboard: dict):
    for panel in _job_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def serving_targets(dashboard: dict):
    for panel in serving_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _labels(**labels) -> frozenset:
    return frozenset(labels.items())


def _p_value(report: dict) -> float | None:
    for check in (report.get("decision") or {}).get("checks") or []:
        if check.get("name") == "significance":
            values = check.get("values") or {}
            p = values.get("p_value", values.get("p"))
            if isinstance(p, (int, float)):
                return float(p)
    return None


def expected_panels(reports: list[dict], i: int, t: float, project: str) -> dict[str, dict[str, Series]]:
    """{panel title: {refId: {labels: value}}} at time ``t`` after run ``reports[i]``."""
    run = reports[i]
    history = reports[: i + 1]
    last_success = [r for r in history if r["outcome"] in SUCCESS]
    last_promotion = [r for r in history if r["outcome"] == "promoted"]
    outcome = {_labels(project=project, outcome=run["outcome"]): 1.0}

    def scores(key: str) -> Series:
        out = {}
        for model in ("candidate", "active"):
            value = (run.get(model) or {}).get(key)
            if value is not None:
                out[_labels(project=project, model=model)] = float(value)
        return out

    def since(found: list[dict]) -> Series:
        return {_labels(project=project): t - ts(found[-1]["finished_at"])} if found else {}

    def fallback(key: str, recommended: bool) -> Series:
        out = {}
        for model in ("candidate", "active"):
            part = ((run.get("fallback") or {}).get(model)) or {}
            value = (part.get("recommended") or {}).get(key) if recommended else part.get(key)
            if value is not None:
                out[_labels(project=project, model=model)] = float(value)
        return out

    checks = [c for c in (run.get("decision") or {}).get("checks") or [] if c.get("enabled", True)]
    data = run.get("data") or {}
    p = _p_value(run)
    total = (run.get("durations") or {}).get("total")
    # the model active once the run ended: the candidate when promoted (outputs/prometheus/gauges.active_after)
    active_after = (run.get("candidate") if run["outcome"] == "promoted" else run.get("active")) or {}
    live = run.get("live") or {}  # with --messages only
    return {
        "Last run outcome": {"A": outcome},
        "Time since last successful run": {"A": since(last_success)},
        "Time since last promotion": {"A": since(last_promotion)},
        "Time since last run": {"A": since([run])},
        "Intent F1: candidate vs active": {"A": scores("intent_f1")},
        "Entity F1: candidate vs active": {"A": scores("entity_f1")},
        "Run outcomes over time": {"A": outcome},
        "Stage durations": {
            "A": {_labels(project=project, stage=stage): float(seconds)
                  for stage, seconds in (run.get("durations") or {}).items() if stage != "total"},
            "B": {_labels(project=project): float(total)} if total is not None else {}},
        "Data size": {
            "A": {_labels(project=project): float(data["train_examples"])} if "train_examples" in data else {},
            "B": {_labels(project=project): float(data["test_examples"])} if "test_examples" in data else {},
            "C": {_labels(project=project): float(data["repaired_examples"])} if "repaired_examples" in data else {}},
        "McNemar p-value (candidate vs active)": {"A": {_labels(project=project): p} if p is not None else {}},
        "Failed gate checks": {"A": {_labels(project=project, check=c["name"]): 0.0
                                     for c in checks if not c.get("passed")}},
        "Gate checks of the last run": {"A": {_labels(project=project, check=c["name"]): float(bool(c["passed"]))
                                              for c in checks}},
        "Fallback: coverage at the target precision": {"A": fallback("coverage", True),
                                                       "B": fallback("threshold", True)},
        "Out-of-scope messages answered": {"A": fallback("out_of_scope_answered", False)},
        "Active model: held-out F1 per intent": {
            "A": {_labels(project=project, model=active_after["model"]): 1.0} if active_after.get("model") else {},
            "B": {_labels(project=project, intent=intent): float(row["f1"])
                  for intent, row in (active_after.get("per_intent") or {}).items()
                  if active_after.get("model") and isinstance(row, dict) and row.get("f1") is not None}},
        "Live agreement: candidate vs active on production messages": {
            "A": {_labels(project=project): float(live["disagreement"])}
            if isinstance(live.get("disagreement"), (int, float)) else {},
            "B": {_labels(project=project): float(live["messages"])} if "messages" in live else {},
            "C": _inbox_counts(live, project)},
    }


def _inbox_counts(live: dict, project: str) -> Series:
    """The inbox counts a run with --messages exports, from its report's live section."""
    inbox = live.get("inbox") or {}
    counts = {"read": live.get("read"), "training_examples": inbox.get("training_examples"),
              "unique": inbox.get("unique"), "left_out": inbox.get("left_out"),
              "listed": len(inbox["entries"]) if isinstance(inbox.get("entries"), list) else None}
    return {_labels(project=project, kind=k): float(v) for k, v in counts.items() if isinstance(v, (int, float))}


def query_target(prom, expr: str, project: str, at: float) -> Series:
    result = prom.query(expr.replace("$project", project), at=at)
    return {frozenset(r["metric"].items()): float(r["value"][1]) for r in result}


def check_dashboard(prom, dashboard: dict, reports: list[dict], times: list[float], project: str) -> int:
    """Compare every panel target at every time; returns the number of (target, time) pairs checked."""
    titles = {panel["title"] for panel in _job_panels(dashboard)}
    expected_titles = set(expected_panels(reports, 0, times[0], project))
    assert titles == expected_titles, f"panels without an expectation: {titles ^ expected_titles}"
    checked = 0
    for i, at in enumerate(times):
        expected = expected_panels(reports, i, at, project)
        for panel, target in targets(dashboard):
            want = expected[panel["title"]][target["refId"]]
            got = query_target(prom, target["expr"], project, at)
            where = f"run {i} ({reports[i]['outcome']}), panel {panel['title']!r} {target['refId']}: {target['expr']}"
            assert set(got) == set(want), f"{where}: series {sorted(map(sorted, got))} != {sorted(map(sorted, want))}"
            for labels, value in want.items():
                assert math.isclose(got[labels], value, rel_tol=1e-9, abs_tol=0.01), \
                    f"{where}: {dict(labels)} = {got[labels]}, expected {value}"
            checked += 1
    return checked
