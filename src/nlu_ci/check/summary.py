"""The pull-request check's own Markdown sections (appended to the run summary of ``report.markdown``):
what judged the branch (base data, base policy, the pulled model), the branch's new examples scored apart,
and the data diff with the relabelled examples listed by text, old -> new intent."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nlu_ci.report.markdown import escape
from nlu_ci.report.mdcode import code

RELABELLED_SHOWN = 20


def _pct(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def render(report: Mapping[str, Any], shown: int = RELABELLED_SHOWN) -> str:
    if hasattr(report, "to_dict"):  # the typed RunReport: read its JSON
        report = report.to_dict()
    check = report.get("check") or {}
    lines: list[str] = []
    judged = check.get("judged_by") or {}
    if judged:
        lines += ["### Judged by the base", ""]
        if judged.get("active_model_url"):
            lines.append(f"- active model pulled from {code(judged['active_model_url'])}: "
                         f"{code(judged.get('active_model') or '?')} (checksums verified)")
        if judged.get("base_data"):
            base = (report.get("data") or {}).get("base") or {}
            lines.append(f"- held-out examples: the base branch's ({code(judged['base_data'])}, "
                         f"{base.get('test_examples', '–')} examples, the nightly hash split)")
        lines.append(f"- policy: {code(judged['policy']) if judged.get('policy') else 'the built-in policy'}"
                     + (" (the base branch's)" if judged.get("base_data") else ""))
        lines.append("")
    new = report.get("new_examples") or {}
    if new.get("examples"):
        cand, act = new.get("candidate") or {}, new.get("active") or {}
        lines += [f"The branch's {new['examples']} new held-out examples, scored apart (not in the gate): "
                  f"candidate intent accuracy {_pct(cand.get('intent_accuracy'))}, active "
                  f"{_pct(act.get('intent_accuracy'))}.", ""]
    d = report.get("data_diff") or {}
    if d:
        lines += ["### Data diff", "",
                  f"Against {escape(d.get('against'))}: {d.get('added', 0)} added, {d.get('removed', 0)} removed, "
                  f"**{d.get('relabelled', 0)} relabelled** (same text, another intent).", ""]
        relabelled = [r for r in d.get("relabelled_examples") or [] if isinstance(r, Mapping)]
        if relabelled:
            lines += ["| relabelled example | old intent | new intent |", "|---|---|---|"]
            lines += [f"| {escape(r.get('text'))} | {escape(r.get('old_intent'))} | {escape(r.get('new_intent'))} |"
                      for r in relabelled[:shown]]
            if d.get("relabelled", 0) > min(len(relabelled), shown):
                lines.append(f"| … and {d['relabelled'] - min(len(relabelled), shown)} more | | |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n" if lines else ""
