"""What the review page shows, computed from a run report and its per-utterance predictions.

Pure functions over plain data (the report's ``candidate``/``active``/``decision`` sections and the rows of
``reports/<stamp>.predictions.jsonl``: ``{"text", "intent", "entities", "candidate": {...}, "active": {...}}``).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

METRICS = (("intent F1 (weighted)", "intent_f1"), ("intent accuracy", "intent_accuracy"),
           ("intent macro F1", "intent_macro_f1"), ("intent precision", "intent_precision"),
           ("entity F1", "entity_f1"), ("entity precision", "entity_precision"), ("entity recall", "entity_recall"))


def metric_rows(candidate: Mapping[str, Any], active: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, key in METRICS:
        c, a = candidate.get(key), active.get(key)
        if c is None and a is None:
            continue
        delta = c - a if isinstance(c, (int, float)) and isinstance(a, (int, float)) else None
        rows.append({"label": label, "candidate": c, "active": a, "delta": delta})
    return rows


def intent_deltas(candidate: Mapping[str, Any], active: Mapping[str, Any], limit: int = 40) -> list[tuple[str, float]]:
    """(intent, candidate F1 - active F1), the ``limit`` largest changes, losses first."""
    cand, act = candidate.get("per_intent") or {}, active.get("per_intent") or {}
    rows = [(name, float(c["f1"]) - float(act[name]["f1"])) for name, c in cand.items()
            if isinstance(c, Mapping) and isinstance(act.get(name), Mapping)
            and c.get("f1") is not None and act[name].get("f1") is not None]
    rows = sorted(rows, key=lambda r: -abs(r[1]))[:limit]
    return sorted(rows, key=lambda r: (r[1], r[0]))


def confusion(rows: list[dict], side: str = "candidate", size: int = 12) -> tuple[list[str], list[list[int]]]:
    """The ``size`` intents involved in most errors of ``side`` and their confusion counts (true x predicted)."""
    pairs = Counter((r.get("intent"), (r.get(side) or {}).get("intent")) for r in rows if r.get(side))
    involved: Counter = Counter()
    for (gold, pred), n in pairs.items():
        if gold != pred:
            involved[gold] += n
            involved[pred] += n
    names = [name for name, _ in involved.most_common(size) if name is not None]
    names.sort(key=str)
    index = {name: i for i, name in enumerate(names)}
    counts = [[0] * len(names) for _ in names]
    for (gold, pred), n in pairs.items():
        if gold in index and pred in index:
            counts[index[gold]][index[pred]] += n
    return names, counts


def confidence_bins(rows: list[dict], side: str, bins: int = 10) -> tuple[list[int], list[int]]:
    """Histogram counts of ``side``'s intent confidence: (correct, wrong)."""
    right, wrong = [0] * bins, [0] * bins
    for r in rows:
        p = r.get(side) or {}
        conf = p.get("confidence")
        if not isinstance(conf, (int, float)):
            continue
        b = min(bins - 1, max(0, int(conf * bins)))
        (right if p.get("intent") == r.get("intent") else wrong)[b] += 1
    return right, wrong


def entity_confidence_bins(rows: list[dict], side: str, bins: int = 10) -> tuple[list[int], list[int]]:
    """Histogram counts of ``side``'s entity confidences: (right, wrong); right = a gold entity with the same
    span and type. Entities without a confidence are left out."""
    right, wrong = [0] * bins, [0] * bins
    for r in rows:
        gold = _spans(r.get("entities"))
        for e in (r.get(side) or {}).get("entities") or []:
            conf = e.get("confidence") if isinstance(e, Mapping) else None
            if isinstance(conf, (int, float)):
                b = min(bins - 1, max(0, int(conf * bins)))
                (right if (e.get("start"), e.get("end"), e.get("entity")) in gold else wrong)[b] += 1
    return right, wrong


def regressions(rows: list[dict], deltas: list[tuple[str, float]], intents: int = 5,
                examples: int = 5) -> list[dict[str, Any]]:
    """The intents that lost most F1, each with utterances the active model got right and the candidate wrong."""
    out = []
    for name, delta in [d for d in deltas if d[1] < 0][:intents]:
        broken = [r for r in rows if (r.get("candidate") and r.get("active"))
                  and (r.get("intent") == name or r["candidate"].get("intent") == name)
                  and r["active"].get("intent") == r.get("intent") and r["candidate"].get("intent") != r.get("intent")]
        out.append({"intent": name, "delta": delta, "count": len(broken), "examples": [
            {"text": r.get("text"), "gold": r.get("intent"), "candidate": r["candidate"].get("intent"),
             "confidence": r["candidate"].get("confidence"), "active": r["active"].get("intent")}
            for r in broken[:examples]]})
    return out


def newly_wrong(rows: list[dict]) -> tuple[int, int]:
    """(utterances only the candidate gets wrong, utterances only the active model gets wrong)."""
    worse = better = 0
    for r in rows:
        c, a = r.get("candidate"), r.get("active")
        if not c or not a:
            continue
        cr, ar = c.get("intent") == r.get("intent"), a.get("intent") == r.get("intent")
        worse += ar and not cr
        better += cr and not ar
    return worse, better


def _spans(entities) -> set[tuple[int, int, str]]:
    return {(e.get("start"), e.get("end"), e.get("entity")) for e in entities or [] if isinstance(e, Mapping)}


def entity_errors(rows: list[dict], side: str = "candidate", limit: int = 30) -> tuple[list[dict], Counter]:
    """Utterances whose predicted entities differ from the gold ones (exact span and type), and the count of
    errors per kind: missed (gold not found), spurious (found, not gold), wrong type (same span)."""
    kinds: Counter = Counter()
    out = []
    for r in rows:
        pred = r.get(side)
        if not pred or ("entities" not in r and not pred.get("entities")):
            continue
        gold, found = _spans(r.get("entities")), _spans(pred.get("entities"))
        if gold == found:
            continue
        gold_at = {(s, e): t for s, e, t in gold}
        found_at = {(s, e): t for s, e, t in found}
        problems = []
        for (s, e), t in sorted(gold_at.items(), key=lambda x: (x[0][0] or 0)):
            if (s, e) not in found_at:
                problems.append(("missed", t, s, e))
            elif found_at[(s, e)] != t:
                problems.append(("wrong type", f"{t} → {found_at[(s, e)]}", s, e))
        for (s, e), t in sorted(found_at.items(), key=lambda x: (x[0][0] or 0)):
            if (s, e) not in gold_at:
                problems.append(("spurious", t, s, e))
        kinds.update(p[0] for p in problems)
        if len(out) < limit:
            text = r.get("text") or ""
            out.append({"text": text, "problems": [
                {"kind": k, "entity": t, "value": text[s:e] if isinstance(s, int) and isinstance(e, int) else ""}
                for k, t, s, e in problems]})
    return out, kinds


def fallback_rows(fallback) -> list[dict[str, Any]]:
    """The fallback section (``report.fallback``, a FallbackInfo) as rows ``{label, candidate, active, kind}``:
    at the policy threshold and at the recommended one (docs/policy.md "The fallback threshold")."""
    if fallback is None:
        return []
    t, target = fallback.threshold, fallback.target_precision
    c, a = fallback.model("candidate"), fallback.model("active")
    rc, ra = _mapping(c.get("recommended")), _mapping(a.get("recommended"))
    return [
        {"label": f"coverage at threshold {t}", "candidate": c.get("coverage"), "active": a.get("coverage"),
         "kind": "share"},
        {"label": f"precision at threshold {t}", "candidate": c.get("precision"), "active": a.get("precision"),
         "kind": "share"},
        {"label": f"out-of-scope answered at threshold {t} (of {fallback.out_of_scope})",
         "candidate": c.get("out_of_scope_answered"), "active": a.get("out_of_scope_answered"), "kind": "count"},
        {"label": f"recommended threshold (precision ≥ {target})", "candidate": rc.get("threshold"),
         "active": ra.get("threshold"), "kind": "number"},
        {"label": "coverage there", "candidate": rc.get("coverage"), "active": ra.get("coverage"), "kind": "share"},
        {"label": "out-of-scope answered there", "candidate": rc.get("out_of_scope_answered"),
         "active": ra.get("out_of_scope_answered"), "kind": "count"},
    ]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
