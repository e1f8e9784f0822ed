"""A run report as Markdown: the pull-request summary of ``nlu-ci check`` (a GitHub Actions job summary,
a GitLab merge-request comment).

``render(report)`` (a ``RunReport``, or its JSON) is pure: the verdict, candidate vs active, every gate check, the intents that lost most
F1, the warnings and a link to the review page. Every value that comes from data or configuration (intent
names, check details, errors) is escaped, so an utterance or an intent name cannot inject Markdown or HTML
into the comment.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nlu_ci.redact import redact
from nlu_ci.report.mdcode import code  # code spans: nothing escaped inside backticks
from nlu_ci.report.model import CheckResult, ModelScores, RunReport
from nlu_ci.report.views import delta, failed_checks, fmt, signed

METRICS = (("intent F1", "intent_f1"), ("intent accuracy", "intent_accuracy"), ("intent macro F1", "intent_macro_f1"),
           ("entity F1", "entity_f1"))
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")


def escape(value: Any) -> str:
    """Markdown/HTML special characters backslash-escaped, one line, secrets masked."""
    text = " ".join(redact(str(value)).split())
    return _SPECIAL.sub(r"\\\1", text)


def verdict(report: RunReport) -> tuple[str, str]:
    """(icon, one-line verdict) for a check run."""
    if report.outcome == "failed":
        return "❌", f"the check could not run: {escape(report.error or 'unknown error')}"
    if report.outcome == "skipped":
        return "✅", "nothing to check: the active model was trained from the same data, config and split"
    if report.outcome == "locked":
        return "⏳", "the store was locked by another run; nothing was checked"
    if report.decision is not None and report.decision.promote:
        return "✅", "the gate passes: this data would be promoted"
    return "❌", "the gate fails: this data would be rejected"


def _metrics_table(candidate: ModelScores, active: ModelScores) -> list[str]:
    lines = ["| metric | candidate (this branch) | active | change |", "|---|---:|---:|---:|"]
    for label, key in METRICS:
        c, a = getattr(candidate, key), getattr(active, key)
        if c is None and a is None:
            continue
        lines.append(f"| {label} | {fmt(c)} | {fmt(a)} | {signed(delta(c, a))} |")
    return lines


def _checks_table(checks: list[CheckResult]) -> list[str]:
    lines = ["| check | result | detail |", "|---|---|---|"]
    for check in checks:
        result = ("pass" if check.passed else "**FAIL**") if check.enabled else "info"
        lines.append(f"| {escape(check.name)} | {result} | {escape(check.detail or '')} |")
    return lines


def intent_changes(candidate: ModelScores, active: ModelScores) -> list[tuple[str, float, float, int]]:
    """(intent, candidate F1, F1 change, support) for intents in both models, biggest loss first."""
    cand, act = candidate.per_intent or {}, active.per_intent or {}
    rows = []
    for name, c in cand.items():
        a = act.get(name)
        if isinstance(c, Mapping) and isinstance(a, Mapping) and c.get("f1") is not None and a.get("f1") is not None:
            rows.append((name, float(c["f1"]), float(c["f1"]) - float(a["f1"]), int(c.get("support") or 0)))
    rows.sort(key=lambda r: (r[2], r[0]))
    return rows


def render(report: RunReport | Mapping[str, Any], *, worst: int = 5) -> str:
    """The Markdown summary of a check run (``worst``: how many intents that lost F1 to list)."""
    report = RunReport.coerce(report)
    icon, text = verdict(report)
    lines = [f"## {icon} nlu-ci check [{escape(report.project or 'default')}]: {text}", ""]
    candidate, active, data = report.candidate, report.active, report.data
    if data is not None:
        lines += [f"Data: {_or_dash(data.train_examples)} training / {_or_dash(data.test_examples)} test "
                  f"examples, {len(data.intents)} intents (fingerprint "
                  f"{code(str(data.fingerprint or '')[:19])}). The active model is scored on the same "
                  "held-out test set.", ""]
    if candidate is not None:
        if active is not None:
            lines += _metrics_table(candidate, active) + [""]
            lines.append(f"Active model: {code(active.model)}.")
            lines.append("")
        else:
            lines += [f"No active model yet: candidate intent F1 {fmt(candidate.intent_f1)}, "
                      f"entity F1 {fmt(candidate.entity_f1)}.", ""]
    decision = report.decision
    failed = failed_checks(report)
    if failed:
        lines.append("**Failed checks:** " + ", ".join(code(c.name) for c in failed))
        lines.append("")
    if decision is not None and decision.checks:
        lines += ["### Gate checks", ""] + _checks_table(decision.checks) + [""]
        lines += [f"Decision: {escape(decision.reason or '')}", ""]
    losses = [r for r in intent_changes(candidate, active) if r[2] < 0][:worst] if candidate and active else []
    if losses:
        lines += ["### Intents that lost most F1", "", "| intent | F1 | change | test examples |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {escape(name)} | {f1:.4f} | {d:+.4f} | {n} |" for name, f1, d, n in losses]
        lines.append("")
    warnings = report.warnings
    if warnings:
        lines += ["### Warnings", ""] + [f"- {escape(w)}" for w in warnings[:10]]
        if len(warnings) > 10:
            lines.append(f"- … and {len(warnings) - 10} more")
        lines.append("")
    page = report.section("review_page")
    if page.get("url") or page.get("path"):
        where = f"<{page['url']}>" if page.get("url") else code(page["path"])
        lines += [f"Review page (charts, confusion matrix, errors with examples): {where}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _or_dash(value: Any) -> Any:
    return "–" if value is None else value
