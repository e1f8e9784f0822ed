"""The fallback threshold: both models scored as the assistant acts, a recommended threshold, out-of-scope counts.

An assistant answers a message only when the top intent's confidence is at least its NLU threshold (Rasa's
FallbackPolicy ``nlu_threshold``; rasa_nlu's own evaluation ignores it, RasaHQ/rasa#5988). Below it, or when the
top intent is ``out_of_scope``, the assistant falls back. Definitions (docs/policy.md, "The fallback threshold"):

* in-scope messages: the held-out test examples whose intent is not ``out_of_scope``; out-of-scope messages: the
  test examples of intent ``out_of_scope`` plus the ``--out-of-scope`` file's messages;
* answered at ``t``: predicted intent not None / ``out_of_scope`` and confidence >= ``t``;
* ``coverage``: answered in-scope messages / in-scope messages;
* ``precision``: answered in-scope messages with the right intent / all answered messages (an answered
  out-of-scope message is a wrong answer);
* ``out_of_scope_answered``: out-of-scope messages answered (the assistant answers what it should not);
* the recommended threshold: the lowest confidence ``t`` among the messages at which ``precision >= target``
  (the highest coverage that reaches the target; None when no threshold does).
"""
from __future__ import annotations

from typing import Any

from nlu_ci import gate

OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "fallback"  # the label of a fallen-back message in the as-served intent F1
CHECK = "fallback_coverage"


def _answerable(intent: Any) -> bool:
    return intent is not None and intent != OUT_OF_SCOPE


def items(utterances: list[dict], out_of_scope_predictions: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """(in-scope, out-of-scope): (confidence, answerable, correct, gold, predicted) per message."""
    inside, outside = [], []
    for u in utterances:
        row = (float(u.get("confidence") or 0.0), _answerable(u.get("predicted_intent")), bool(u.get("correct")),
               u.get("intent"), u.get("predicted_intent"))
        (outside if u.get("intent") == OUT_OF_SCOPE else inside).append(row)
    for p in out_of_scope_predictions:
        outside.append((float(p.get("confidence") or 0.0), _answerable(p.get("intent")), False, OUT_OF_SCOPE,
                        p.get("intent")))
    return inside, outside


def at_threshold(inside: list[tuple], outside: list[tuple], t: float) -> dict[str, Any]:
    """The numbers at threshold ``t`` (as the assistant would act with ``nlu_threshold: t``)."""
    answered = [r for r in inside if r[1] and r[0] >= t]
    right = sum(1 for r in answered if r[2])
    oos = sum(1 for r in outside if r[1] and r[0] >= t)
    n_answers = len(answered) + oos
    return {"threshold": t, "answered": len(answered), "coverage": len(answered) / len(inside) if inside else None,
            "precision": right / n_answers if n_answers else None, "out_of_scope_answered": oos}


def recommend(inside: list[tuple], outside: list[tuple], target: float) -> dict[str, Any]:
    """The lowest threshold whose precision reaches ``target``, with its numbers; ``reached`` False (threshold
    None, coverage 0: the target needs answering nothing) when none does."""
    answers = sorted(((r[0], 1 if r[2] else 0) for r in inside + outside if r[1]), reverse=True)
    best, n, right, i = None, 0, 0, 0
    while i < len(answers):  # thresholds from the highest confidence down; ties enter together
        t = answers[i][0]
        while i < len(answers) and answers[i][0] == t:
            n, right, i = n + 1, right + answers[i][1], i + 1
        if right / n >= target:
            best = t
    if best is None:
        return {"threshold": None, "answered": 0, "coverage": 0.0 if inside else None, "precision": None,
                "out_of_scope_answered": 0, "reached": False}
    return {**at_threshold(inside, outside, best), "reached": True}


def served_f1(inside: list[tuple], outside: list[tuple], t: float) -> tuple[float, float]:
    """(weighted intent F1, accuracy) with a fallen-back message labelled ``fallback`` (gold of out-of-scope
    messages: ``fallback``), computed as evaluation.py computes intent F1."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    gold = [r[3] for r in inside] + [FALLBACK] * len(outside)
    pred = [r[4] if r[1] and r[0] >= t else FALLBACK for r in inside + outside]
    _, _, f1, _ = precision_recall_fscore_support(gold, pred, average="weighted", zero_division=0)
    return float(f1), float(accuracy_score(gold, pred))


def score(utterances: list[dict], out_of_scope_predictions: list[dict], threshold: float,
          target: float) -> dict[str, Any]:
    """One model's part of the section: at the policy threshold, and ``recommended`` at the target precision."""
    inside, outside = items(utterances, out_of_scope_predictions)
    out = at_threshold(inside, outside, threshold)
    out["intent_f1"], out["accuracy"] = served_f1(inside, outside, threshold) if inside or outside else (None, None)
    out["recommended"] = recommend(inside, outside, target)
    return out


def section(policy, candidate, active, out_of_scope: list[str] | None, source: str | None,
            predict_candidate, predict_active) -> dict[str, Any] | None:
    """The report's ``fallback`` section (None when the evaluation has no per-utterance predictions).
    ``candidate``/``active``: EvaluationResults; ``predict_*``: ``predict(texts)`` of each model (or None)."""
    if candidate is None or not candidate.utterances:
        return None
    fb, texts = policy.fallback, list(out_of_scope or [])
    in_test = sum(1 for u in candidate.utterances if u.get("intent") == OUT_OF_SCOPE)

    def one(result, predict) -> dict[str, Any] | None:
        if result is None or not result.utterances:
            return None
        if texts and predict is None:
            return None  # the file's messages cannot be predicted: no honest out-of-scope count
        return score(result.utterances, predict(texts) if texts else [], fb.threshold, fb.target_precision)

    return {"threshold": fb.threshold, "target_precision": fb.target_precision,
            "in_scope": len(candidate.utterances) - in_test, "out_of_scope": in_test + len(texts),
            "out_of_scope_sources": {"test_data": in_test, "file": len(texts), "path": source},
            "candidate": one(candidate, predict_candidate), "active": one(active, predict_active)}


def check(fallback: dict | None, max_drop: float | None) -> gate.Check:
    """``fallback_coverage``: the candidate's coverage at the target precision is not more than ``max_drop``
    below the active model's (off: report only)."""
    cand = ((fallback or {}).get("candidate") or {}).get("recommended") or {}
    act = ((fallback or {}).get("active") or {}).get("recommended") or {}
    values = {"max_drop": max_drop, "target_precision": (fallback or {}).get("target_precision"),
              "candidate": cand.get("coverage"), "active": act.get("coverage")}
    if cand.get("coverage") is None or act.get("coverage") is None:
        return gate.Check(CHECK, True, "not applicable: no active model or no in-scope predictions of both",
                          values, enabled=False)
    drop = act["coverage"] - cand["coverage"]
    values["drop"] = drop
    detail = (f"coverage at precision {values['target_precision']:g}: candidate {cand['coverage']:.1%} vs active "
              f"{act['coverage']:.1%} ({-drop:+.1%})")
    if max_drop is None:
        return gate.Check(CHECK, True, f"report only: {detail}", values, enabled=False)
    passed = drop <= max_drop + 1e-12
    return gate.Check(CHECK, passed, f"{detail}: drop {'<=' if passed else '>'} {max_drop:.1%}", values)


def apply(decision: gate.Decision, fallback: dict | None, max_drop: float | None) -> gate.Decision:
    """``decision`` with ``fallback_coverage`` added (when the section exists); a failing enabled check turns a
    promotion into a rejection."""
    if fallback is None:
        return decision
    return gate.with_check(decision, check(fallback, max_drop))
