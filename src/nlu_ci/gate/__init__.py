"""The promotion decision: is the candidate good enough to replace the active model?

``decide`` runs every check of the policy (``nlu_ci.gate.policy``; docs/policy.md) and promotes only when
all *enabled* checks pass. Each check reports its numbers, whether or not it is enabled, so the report
always shows the whole picture (b, c and the McNemar p-value, the bootstrap interval, per-intent drops).

This module only compares results it is given; it reads no files. Must-pass utterances are predicted
through the ``predict_candidate``/``predict_active`` callables (``texts -> Prediction dicts``).

Pair-based checks (significance, bootstrap interval) need per-utterance results of both models on the
same test set, in the same order. Without them (a platform evaluation has no ``utterances``) they are
"not applicable" (passed, not enabled) unless the policy demands proof (``direction: better`` or
``bootstrap.gate: true``): then they fail with the reason.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from nlu_ci.gate import registered, stats
from nlu_ci.gate.policy import DEFAULT, Policy
from nlu_ci.gate.result import EPS, Check, Decision, na

_na = na
__all__ = ["EPS", "Check", "Decision", "Policy", "decide", "format_checks", "with_check", "with_hold"]


# ------------------------------------------------------------------------------------------ pairing

def _pairs(candidate, active) -> tuple[list[tuple[dict, dict]] | None, str]:
    """The paired utterances, or None and why not."""
    if active is None:
        return None, "no active model"
    cu, au = candidate.utterances or [], active.utterances or []
    missing = [name for name, u in (("candidate", cu), ("active", au)) if not u]
    if missing:
        sources = ", ".join(f"{n} evaluated by {getattr(r, 'source', 'local')}"
                            for n, r in (("candidate", candidate), ("active", active)) if n in missing)
        return None, f"no per-utterance results ({sources})"
    if len(cu) != len(au):
        return None, f"the models were evaluated on different test sets ({len(cu)} vs {len(au)} utterances)"
    for i, (c, a) in enumerate(zip(cu, au, strict=True)):
        if c.get("text") != a.get("text") or c.get("intent") != a.get("intent"):
            return None, f"the models were evaluated on different test sets (utterance {i} differs)"
    return list(zip(cu, au, strict=True)), ""


# ------------------------------------------------------------------------------------------ checks

def _improvement_rule(policy: Policy) -> tuple[str, float, str] | None:
    """(check name, threshold on the gain, how it reads) or None when switched off."""
    if policy.non_inferiority_margin is not None:
        m = policy.non_inferiority_margin
        return "non_inferiority", -m, f">= -{m:.4f} (non-inferiority margin)"
    if policy.min_improvement is not None:
        m = policy.min_improvement
        return "min_improvement", m, "> 0 (classic rule)" if m == 0 else f">= {m:.4f}"
    return None


def _meets(gain: float, threshold: float) -> bool:
    return gain > 0 if threshold == 0 else gain >= threshold - EPS


def check_improvement(candidate, active, policy: Policy) -> Check:
    rule = _improvement_rule(policy)
    if rule is None:
        return _na("min_improvement", "switched off")
    name, threshold, reads = rule
    if active is None:
        return _na(name, "no active model", candidate=candidate.intent_f1, threshold=threshold)
    gain = candidate.intent_f1 - active.intent_f1
    passed = _meets(gain, threshold)
    return Check(name, passed,
                 f"intent F1 {candidate.intent_f1:.4f} vs active {active.intent_f1:.4f} ({gain:+.4f}; needs {reads})",
                 {"candidate": candidate.intent_f1, "active": active.intent_f1, "gain": gain, "threshold": threshold})


def check_significance(pairs, why: str, policy: Policy) -> Check:
    sig = policy.significance
    base = {"test": sig.test, "alpha": sig.alpha, "direction": sig.direction}
    if pairs is None:
        if sig.direction == "better" and why != "no active model":
            return Check("significance", False, f"direction 'better' needs paired results: {why}", base)
        return _na("significance", why, **base)
    r = stats.mcnemar_paired([a["correct"] for _, a in pairs], [c["correct"] for c, _ in pairs])
    values = dict(base, b=r.b, c=r.c, n=len(pairs), p_value=r.p_value, p_better=r.p_better, p_worse=r.p_worse)
    counts = f"McNemar b={r.b} (candidate newly wrong) c={r.c} (newly right) of {len(pairs)}"
    if sig.direction == "better":
        passed = r.p_better < sig.alpha
        verdict = "significantly better" if passed else "not significantly better"
        return Check("significance", passed,
                     f"{counts}: one-sided p={r.p_better:.4g} {'<' if passed else '>='} alpha {sig.alpha:g}: {verdict}",
                     values)
    worse = r.p_worse < sig.alpha
    detail = (f"{counts}: one-sided p(worse)={r.p_worse:.4g} {'<' if worse else '>='} alpha {sig.alpha:g}: "
              f"{'significantly worse' if worse else 'not significantly worse'}; two-sided p={r.p_value:.4g}")
    if sig.direction == "off":
        return Check("significance", True, f"switched off (report only): {detail}", values, enabled=False)
    return Check("significance", not worse, detail, values)


def check_bootstrap(pairs, why: str, policy: Policy) -> Check:
    bs = policy.bootstrap
    rule = _improvement_rule(policy)
    threshold = rule[1] if rule else 0.0
    base = {"resamples": bs.resamples, "seed": bs.seed, "confidence": bs.confidence, "gate": bs.gate,
            "threshold": threshold}
    if not bs.enabled:
        return _na("bootstrap_ci", "switched off", **base)
    if pairs is None:
        if bs.gate and why != "no active model":
            return Check("bootstrap_ci", False, f"gating bootstrap needs paired results: {why}", base)
        return _na("bootstrap_ci", why, **base)
    r = stats.paired_bootstrap_f1_diff([c["intent"] for c, _ in pairs],
                                       [c.get("predicted_intent") for c, _ in pairs],
                                       [a.get("predicted_intent") for _, a in pairs],
                                       resamples=bs.resamples, seed=bs.seed, confidence=bs.confidence)
    passed = _meets(r.low, threshold)
    detail = (f"F1 difference {r.observed:+.4f}, {bs.confidence:.0%} CI [{r.low:+.4f}, {r.high:+.4f}] "
              f"({bs.resamples} paired resamples, seed {bs.seed}); lower bound "
              f"{'meets' if passed else 'misses'} {'> 0' if threshold == 0 else f'>= {threshold:+.4f}'}")
    values = dict(base, observed=r.observed, low=r.low, high=r.high, mean=r.mean)
    if not bs.gate:
        return Check("bootstrap_ci", passed, f"report only: {detail}", values, enabled=False)
    return Check("bootstrap_ci", passed, detail, values)


def _names(items: list[str], limit: int = 5) -> str:
    """A short list for a one-line detail (the full list is in the check's values)."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _unknown_to_active(intent: str, active) -> bool:
    """An intent the active model scores 0 on and never predicts on this test set: typically new in the data
    (it cannot fail the guard anyway: the candidate cannot lose F1 the active model does not have)."""
    metrics = (active.per_intent or {}).get(intent)
    if metrics is None:
        return True
    if metrics.get("f1", 0.0) > 0 or not active.utterances:
        return False
    return not any(u.get("predicted_intent") == intent for u in active.utterances)


def check_per_intent(candidate, active, policy: Policy) -> Check:
    max_drop, min_support = policy.per_intent_max_drop, policy.min_support
    if max_drop is None:
        return _na("per_intent", "switched off")
    base = {"max_drop": max_drop, "min_support": min_support}
    if active is None:
        return _na("per_intent", "no active model", **base)
    failed, new, low_support = [], [], []
    worst = None
    for intent, m in sorted((candidate.per_intent or {}).items()):
        support = int(m.get("support", 0))
        if _unknown_to_active(intent, active):
            new.append(intent)
            continue
        if support < min_support:
            low_support.append(intent)
            continue
        before = active.per_intent[intent].get("f1", 0.0)
        drop = before - m.get("f1", 0.0)
        row = {"intent": intent, "active": before, "candidate": m.get("f1", 0.0), "drop": drop, "support": support}
        if worst is None or drop > worst["drop"]:
            worst = row
        if drop > max_drop + EPS:
            failed.append(row)
    removed = sorted(set(active.per_intent or {}) - set(candidate.per_intent or {}))
    values = dict(base, failed=failed, worst=worst, new_intents=new, low_support=low_support,
                  removed_intents=removed)
    notes = "".join(f"; {label}: {_names(items)}" for label, items in
                    (("never predicted by the active model (new?)", new), (f"support < {min_support} (not checked)", low_support),
                     ("not in the test set any more", removed)) if items)
    if failed:
        f = max(failed, key=lambda r: r["drop"])
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        return Check("per_intent", False,
                     f"intent '{f['intent']}' F1 {f['active']:.3f} -> {f['candidate']:.3f} (drop {f['drop']:.3f} > "
                     f"{max_drop:.3f}, support {f['support']}){more}{notes}", values)
    largest = (f"largest drop {worst['drop']:+.3f} ('{worst['intent']}')" if worst else "no intent checked")
    return Check("per_intent", True,
                 f"no intent with support >= {min_support} lost more than {max_drop:.3f} F1 ({largest}){notes}", values)


def check_entities(candidate, active, policy: Policy, has_entities: bool | None) -> list[Check]:
    ef = policy.entity_f1
    if has_entities is None:
        has_entities = candidate.entity_f1 is not None
    if not has_entities:
        return [_na("entity_f1_min", "the pipeline extracts no entities"),
                _na("entity_f1_drop", "the pipeline extracts no entities")]
    cand = candidate.entity_f1
    checks = []
    if ef.min is None:
        checks.append(_na("entity_f1_min", "switched off"))
    elif cand is None:
        checks.append(_na("entity_f1_min", "no entities in the test data or the predictions", threshold=ef.min))
    else:
        ok = cand >= ef.min - EPS
        checks.append(Check("entity_f1_min", ok, f"entity F1 {cand:.4f} {'>=' if ok else '<'} floor {ef.min:.4f}",
                            {"candidate": cand, "threshold": ef.min}))
    if ef.max_drop is None:
        checks.append(_na("entity_f1_drop", "switched off"))
    elif active is None:
        checks.append(_na("entity_f1_drop", "no active model", max_drop=ef.max_drop))
    elif cand is None or active.entity_f1 is None:
        checks.append(_na("entity_f1_drop", "no entity F1 for both models", max_drop=ef.max_drop))
    else:
        drop = active.entity_f1 - cand
        ok = drop <= ef.max_drop + EPS
        checks.append(Check("entity_f1_drop", ok,
                            f"entity F1 {cand:.4f} vs active {active.entity_f1:.4f} (drop {drop:+.4f}; "
                            f"allowed {ef.max_drop:.4f})",
                            {"candidate": cand, "active": active.entity_f1, "drop": drop, "max_drop": ef.max_drop}))
    return checks


def must_pass_failures(items, predictions: list[dict]) -> list[dict]:
    """The must-pass items a model gets wrong (intent, and the entity set when the item lists entities)."""
    failures = []
    for item, pred in zip(items, predictions, strict=True):
        got = pred.get("intent")
        entities = tuple(sorted((e.get("entity"), str(e.get("value"))) for e in pred.get("entities") or []))
        wrong_entities = item.entities is not None and entities != item.entities
        if got != item.intent or wrong_entities:
            row = {"text": item.text, "expected_intent": item.intent, "predicted_intent": got}
            if item.entities is not None:
                row["expected_entities"] = [list(e) for e in item.entities]
                row["predicted_entities"] = [list(e) for e in entities]
            failures.append(row)
    return failures


def _describe_failure(f: dict) -> str:
    text = f"'{f['text'][:40]}' -> {f['predicted_intent']} (expected {f['expected_intent']})"
    if "expected_entities" in f and f["expected_entities"] != f["predicted_entities"]:
        got = ", ".join(f"{e}={v}" for e, v in f["predicted_entities"]) or "none"
        text += f" entities {got} (expected {', '.join(f'{e}={v}' for e, v in f['expected_entities']) or 'none'})"
    return text


def check_must_pass(policy: Policy, active, predict_candidate, predict_active) -> Check:
    items = policy.must_pass
    if not items:
        return _na("must_pass", "no must-pass utterances in the policy")
    texts = [i.text for i in items]
    values: dict[str, Any] = {"total": len(items), "file": policy.must_pass_file}
    if predict_candidate is None:
        return Check("must_pass", False, f"{len(items)} must-pass utterances but no way to run the candidate model",
                     values)
    values["candidate_failures"] = must_pass_failures(items, predict_candidate(texts))
    active_note = ""
    if active is not None and predict_active is not None:
        values["active_failures"] = must_pass_failures(items, predict_active(texts))
        active_note = f"; active model misses {len(values['active_failures'])}"
    missed = values["candidate_failures"]
    if missed:
        return Check("must_pass", False,
                     f"candidate misses {len(missed)} of {len(items)}: {_describe_failure(missed[0])}"
                     f"{f' (+{len(missed) - 1} more)' if len(missed) > 1 else ''}{active_note}", values)
    return Check("must_pass", True, f"candidate gets all {len(items)} must-pass utterances right{active_note}", values)


# ------------------------------------------------------------------------------------------ decision

def decide(candidate, active, policy: Policy | None = None, *, predict_candidate=None, predict_active=None,
           has_entities: bool | None = None) -> Decision:
    """Run every check of ``policy`` (None: the built-in default) on the candidate against the active model.

    ``candidate``/``active`` are ``nlu_ci.evaluation.EvaluationResult`` on the same test set (``active``
    None: no active model yet; the absolute checks and must-pass still apply). ``has_entities``: whether the
    candidate's pipeline extracts entities (None: inferred from the candidate's entity F1).
    """
    policy = DEFAULT if policy is None else policy
    pairs, why = _pairs(candidate, active)
    checks = [
        *(module.check(candidate, active, policy.checks[module.KEY]) for module in registered.CHECKS),
        check_improvement(candidate, active, policy),
        check_significance(pairs, why, policy),
        check_bootstrap(pairs, why, policy),
        check_per_intent(candidate, active, policy),
        *check_entities(candidate, active, policy, has_entities),
        check_must_pass(policy, active, predict_candidate, predict_active),
    ]
    failed = [c for c in checks if c.enabled and not c.passed]
    if failed:
        names = ", ".join(c.name for c in failed)
        reason = f"rejected by {names}: {failed[0].detail}"
    elif active is None:
        reason = "no active model: the candidate becomes the first active model"
    else:
        enabled = sum(c.enabled for c in checks)
        gain = candidate.intent_f1 - active.intent_f1
        reason = (f"all {enabled} enabled checks passed: intent F1 {candidate.intent_f1:.4f} vs active "
                  f"{active.intent_f1:.4f} ({gain:+.4f})")
    return Decision(not failed, checks, reason, policy.source, has_active=active is not None)


def with_hold(decision: Decision, held: str | None, values: dict | None = None) -> Decision:
    """``decision`` plus the ``rollback_hold`` check (``nlu_ci.registry.holds``): ``held`` is why this data may
    not be promoted (a rollback away from a model trained on it), or None: not applicable."""
    if held is None:
        check = _na("rollback_hold", "no rollback hold on this data")
        return replace(decision, checks=[*decision.checks, check])
    check = Check("rollback_hold", False, held, dict(values or {}))
    names = ", ".join(["rollback_hold"] + [c.name for c in decision.failed_checks])
    return replace(decision, promote=False, checks=[*decision.checks, check], reason=f"rejected by {names}: {held}")


def with_check(decision: Decision, check: Check) -> Decision:
    """``decision`` (changed in place) with a check that runs after ``decide`` (live agreement, fallback coverage):
    a failing enabled one turns a promotion into a rejection, with its detail as the reason."""
    decision.checks.append(check)
    if decision.promote and check.enabled and not check.passed:
        decision.promote = False
        decision.reason = f"{check.name}: {check.detail}"
    return decision


def format_checks(decision: Decision) -> str:
    """The checks as a fixed-width table for the log (``info`` = reported, not gating)."""
    width = max([len(c.name) for c in decision.checks] + [5])
    lines = [f"{'check':<{width}}  result  detail"]
    for c in decision.checks:
        result = ("pass" if c.passed else "FAIL") if c.enabled else "info"
        lines.append(f"{c.name:<{width}}  {result:<6}  {c.detail}")
    lines.append(f"decision: {decision.verdict} — {decision.reason}")
    return "\n".join(lines)
