"""The run report as a JSON document (one per run; keys stable, see docs/architecture.md; the store and
``--report`` keep it) and as a few lines for people (``nlu-ci run`` without ``--json``)."""
from __future__ import annotations

import json

from nlu_ci.redact import redact
from nlu_ci.report.model import RunReport
from nlu_ci.report.views import failed_checks, fmt


def to_json(report: RunReport) -> str:
    return redact(json.dumps(RunReport.coerce(report).to_dict(), indent=2, sort_keys=True, default=str))


def summary(report: RunReport) -> str:
    """A few lines for people: outcome, the numbers compared, failed checks, the error."""
    report = RunReport.coerce(report)
    lines = [f"nlu-ci run [{report.project}]: {str(report.outcome).upper()}"]
    data = report.data
    if data is not None:
        lines.append(f"  data      {data.train_examples} train / {data.test_examples} test examples, "
                     f"{len(data.intents)} intents, {(data.fingerprint or '')[:19]}")
    for role, m in (("candidate", report.candidate), ("active", report.active)):
        if m is not None:
            lines.append(f"  {role:<9} {m.model}: intent F1 {fmt(m.intent_f1, missing='-')}, "
                         f"accuracy {fmt(m.intent_accuracy, missing='-')}, entity F1 {fmt(m.entity_f1, missing='-')}")
    lines += fallback_lines(report) + cv_lines(report)
    diff = report.section("data_diff")
    if diff.get("relabelled"):
        lines.append(f"  relabels  {diff['relabelled']} examples relabelled ({diff.get('held_out_relabelled', 0)} held out, "
                     f"judged by {diff.get('judged_by')}){'' if diff.get('accepted') else '; ship them: --accept-relabels ' + str(diff.get('digest'))}")
    decision = report.decision
    if decision is not None:
        verdict = decision.extra.get("verdict") or ("promote" if decision.promote else "keep active")
        lines.append(f"  decision  {verdict}: {decision.reason}")
        lines += [f"    FAILED  {check.name}: {check.detail}" for check in failed_checks(report)]
    if report.error:
        lines.append(f"  error     {report.error}")
    if report.durations:
        lines.append("  stages    " + ", ".join(f"{k} {v:.1f}s" for k, v in report.durations.items()))
    return redact("\n".join(lines))


def _share(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "-"


def fallback_lines(report: RunReport) -> list[str]:
    """The ``fallback`` section in a line per model: as the assistant acts at the policy threshold, and the
    threshold that reaches the target precision (docs/policy.md "The fallback threshold")."""
    fb = report.fallback
    if fb is None:
        return []
    lines = [f"  fallback  threshold {fb.threshold}: {fb.in_scope} in-scope, {fb.out_of_scope} out-of-scope messages; "
             f"target precision {fb.target_precision}"]
    for role in ("candidate", "active"):
        m = fb.model(role)
        if not m:
            continue
        rec = m.get("recommended") or {}
        there = (f"threshold {rec['threshold']:.3f} for precision {fb.target_precision}: answers "
                 f"{_share(rec.get('coverage'))}, {rec.get('out_of_scope_answered')} out-of-scope answered"
                 if rec.get("reached") else f"precision {fb.target_precision} not reached at any threshold")
        lines.append(f"    {role:<9} answers {_share(m.get('coverage'))} (precision {fmt(m.get('precision'), 3, '-')}), "
                     f"{m.get('out_of_scope_answered')} out-of-scope answered; {there}")
    return lines


def cv_lines(report: RunReport) -> list[str]:
    """The ``cv_search`` section in one line: the choice and each config's mean intent F1 with its std."""
    cv = report.sections.get("cv_search")
    if not isinstance(cv, dict) or not cv.get("configs"):
        return []
    scores = "; ".join(f"{c.get('config')} {fmt(c['intent_f1'].get('mean'))} ± {fmt(c['intent_f1'].get('std'))}"
                       for c in cv["configs"] if isinstance(c.get("intent_f1"), dict))
    return [f"  cv search {cv.get('folds')} folds x {len(cv['configs'])} configs, {cv.get('seconds')} s on "
            f"{cv.get('workers')} worker(s): chose {cv.get('chosen')} (intent F1 mean ± std: {scores})"]
