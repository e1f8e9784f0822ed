"""A run report as Markdown: the pull-request summary of ``nlu-ci check`` (a GitHub Actions job summary,
a GitLab merge-request comment).

``render(report)`` is pure: the verdict, candidate vs active, every gate check, the intents that lost most
F1, the warnings and a link to the review page. Every value that comes from data or configuration (intent
names, check details, errors) is escaped, so an utterance or an intent name cannot inject Markdown or HTML
into the comment.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nlu_ci.mdcode import code  # code spans: nothing escaped inside backticks
from nlu_ci.redact import redact

METRICS = (("intent F1", "intent_f1"), ("intent accuracy", "intent_accuracy"), ("intent macro F1", "intent_macro_f1"),
           ("entity F1", "entity_f1"))
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")


def escape(value: Any) -> str:
    """Markdown/HTML special characters backslash-escaped, one line, secrets masked."""
    text = " ".join(redact(str(value)).split())
    return _SPECIAL.sub(r"\\\1", text)


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _delta(c: Any, a: Any) -> str:
    if isinstance(c, (int, float)) and isinstance(a, (int, float)):
        return f"{c - a:+.4f}"
    return "–"


def verdict(report: Mapping[str, Any]) -> tuple[str, str]:
    """(icon, one-line verdict) for a check run."""
    outcome = report.get("outcome")
    decision = report.get("decision") or {}
    if outcome == "failed":
        return "❌", f"the check could not run: {escape(report.get('error') or 'unknown error')}"
    if outcome == "skipped":
        return "✅", "nothing to check: the active model was trained from the same data, config and split"
    if outcome == "locked":
        return "⏳", "the store was locked by another run; nothing was checked"
    if decision.get("promote"):
        return "✅", "the gate passes: this data would be promoted"
    return "❌", "the gate fails: this data would be rejected"


def _metrics_table(candidate: Mapping[str, Any], active: Mapping[str, Any]) -> list[str]:
    lines = ["| metric | candidate (this branch) | active | change |", "|---|---:|---:|---:|"]
    for label, key in METRICS:
        c, a = candidate.get(key), active.get(key)
        if c is None and a is None:
            continue
        lines.append(f"| {label} | {_f(c)} | {_f(a)} | {_delta(c, a)} |")
    return lines


def _checks_table(checks: list[Mapping[str, Any]]) -> list[str]:
    lines = ["| check | result | detail |", "|---|---|---|"]
    for check in checks:
        result = ("pass" if check.get("passed") else "**FAIL**") if check.get("enabled", True) else "info"
        lines.append(f"| {escape(check.get('name'))} | {result} | {escape(check.get('detail') or '')} |")
    return lines


def intent_changes(candidate: Mapping[str, Any], active: Mapping[str, Any]) -> list[tuple[str, float, float, int]]:
    """(intent, candidate F1, F1 change, support) for intents in both models, biggest loss first."""
    cand, act = candidate.get("per_intent") or {}, active.get("per_intent") or {}
    rows = []
    for name, c in cand.items():
        a = act.get(name)
        if isinstance(c, Mapping) and isinstance(a, Mapping) and c.get("f1") is not None and a.get("f1") is not None:
            rows.append((name, float(c["f1"]), float(c["f1"]) - float(a["f1"]), int(c.get("support") or 0)))
    rows.sort(key=lambda r: (r[2], r[0]))
    return rows


def render(report: Mapping[str, Any], *, worst: int = 5) -> str:
    """The Markdown summary of a check run (``worst``: how many intents that lost F1 to list)."""
    icon, text = verdict(report)
    project = escape(report.get("project") or "default")
    lines = [f"## {icon} nlu-ci check [{project}]: {text}", ""]
    candidate, active = report.get("candidate") or {}, report.get("active") or {}
    data = report.get("data") or {}
    if data:
        lines += [f"Data: {data.get('train_examples', '–')} training / {data.get('test_examples', '–')} test "
                  f"examples, {len(data.get('intents') or [])} intents (fingerprint "
                  f"{code(str(data.get('fingerprint') or '')[:19])}). The active model is scored on the same "
                  "held-out test set.", ""]
    if candidate:
        if active:
            lines += _metrics_table(candidate, active) + [""]
            lines.append(f"Active model: {code(active.get('model'))}.")
            lines.append("")
        else:
            lines += [f"No active model yet: candidate intent F1 {_f(candidate.get('intent_f1'))}, "
                      f"entity F1 {_f(candidate.get('entity_f1'))}.", ""]
    decision = report.get("decision") or {}
    checks = [c for c in decision.get("checks") or [] if isinstance(c, Mapping)]
    failed = [c for c in checks if c.get("enabled", True) and not c.get("passed")]
    if failed:
        lines.append("**Failed checks:** " + ", ".join(code(c.get('name')) for c in failed))
        lines.append("")
    if checks:
        lines += ["### Gate checks", ""] + _checks_table(checks) + [""]
        lines += [f"Decision: {escape(decision.get('reason') or '')}", ""]
    losses = [r for r in intent_changes(candidate, active) if r[2] < 0][:worst] if active else []
    if losses:
        lines += ["### Intents that lost most F1", "", "| intent | F1 | change | test examples |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {escape(name)} | {f1:.4f} | {d:+.4f} | {n} |" for name, f1, d, n in losses]
        lines.append("")
    warnings = report.get("warnings") or []
    if warnings:
        lines += ["### Warnings", ""] + [f"- {escape(w)}" for w in warnings[:10]]
        if len(warnings) > 10:
            lines.append(f"- … and {len(warnings) - 10} more")
        lines.append("")
    page = report.get("review_page") or {}
    if isinstance(page, Mapping) and (page.get("url") or page.get("path")):
        where = f"<{page['url']}>" if page.get("url") else code(page['path'])
        lines += [f"Review page (charts, confusion matrix, errors with examples): {where}", ""]
    return "\n".join(lines).rstrip() + "\n"
