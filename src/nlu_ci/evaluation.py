"""Metrics from gold test examples and a model's predictions (knows nothing of where models live).

Intent metrics are computed as rasa_nlu 0.15's ``evaluate`` does: scikit-learn's
``precision_recall_fscore_support`` with ``average="weighted"`` over gold and predicted labels
(a missing prediction counts as the label "None"). Entities are scored as exact spans: a predicted
entity is right when start, end and entity type all match a gold one (micro P/R/F1). Beside them, the token-level entity scores of ``rasa_nlu.test`` (``entity_tokens``), so the
numbers line up with rasa_nlu's own evaluation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nlu_ci.entity_tokens import token_scores

NO_INTENT = "None"


@dataclass
class EvaluationResult:
    intent_f1: float
    intent_precision: float
    intent_accuracy: float
    intent_macro_f1: float
    per_intent: dict[str, dict]
    entity_f1: float | None = None
    entity_precision: float | None = None
    entity_recall: float | None = None
    per_entity: dict[str, dict] = field(default_factory=dict)
    entity_token_f1: float | None = None         # token-level, weighted, as rasa_nlu.test (entity_tokens.py)
    entity_token_precision: float | None = None
    entity_token_accuracy: float | None = None
    utterances: list[dict] = field(default_factory=list)
    source: str = "local"

    def summary(self) -> dict[str, Any]:
        return {
            "intent_f1": self.intent_f1,
            "intent_precision": self.intent_precision,
            "intent_accuracy": self.intent_accuracy,
            "intent_macro_f1": self.intent_macro_f1,
            "entity_f1": self.entity_f1,
            "entity_precision": self.entity_precision,
            "entity_recall": self.entity_recall,
            "entity_token_f1": self.entity_token_f1,
            "entity_token_precision": self.entity_token_precision,
            "entity_token_accuracy": self.entity_token_accuracy,
            "per_intent": self.per_intent,
            "per_entity": self.per_entity,
            "evaluated_by": self.source,
        }

    @property
    def correct(self) -> list[bool]:
        return [u["correct"] for u in self.utterances]


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _span_set(entities: list[dict]) -> Counter:
    return Counter((int(e["start"]), int(e["end"]), e["entity"]) for e in entities)


def entity_scores(gold: list[list[dict]], predicted: list[list[dict]]) -> tuple[dict | None, dict]:
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    seen = False
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = _span_set(g), _span_set(p)
        if gs or ps:
            seen = True
        for span, n in (gs & ps).items():
            tp[span[2]] += n
        for span, n in (ps - gs).items():
            fp[span[2]] += n
        for span, n in (gs - ps).items():
            fn[span[2]] += n
    if not seen:
        return None, {}
    per = {}
    for name in sorted(set(tp) | set(fp) | set(fn)):
        p, r, f = _prf(tp[name], fp[name], fn[name])
        per[name] = {"precision": p, "recall": r, "f1": f, "support": tp[name] + fn[name]}
    p, r, f = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {"precision": p, "recall": r, "f1": f}, per


def evaluate(examples: list[dict], predictions: list[dict], *, with_entities: bool = True,
             tokens: list[list[tuple[int, int]]] | None = None) -> EvaluationResult:
    """``examples`` and ``predictions`` in the same order (see docs/architecture.md for shapes); ``tokens``: the
    model tokenizer's (start, end) per example, for the token-level entity scores (None: not computed)."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions")
    gold = [e["intent"] for e in examples]
    pred = [p.get("intent") or NO_INTENT for p in predictions]
    precision, _, f1, _ = precision_recall_fscore_support(gold, pred, average="weighted", zero_division=0)
    labels = sorted(set(gold))
    p_each, r_each, f_each, s_each = precision_recall_fscore_support(
        gold, pred, labels=labels, average=None, zero_division=0)
    per_intent = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, p_each, r_each, f_each, s_each, strict=True)
    }
    macro = float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0))
    utterances = [
        {
            "text": e["text"],
            "intent": e["intent"],
            "predicted_intent": p.get("intent"),
            "confidence": p.get("confidence", 0.0),
            "correct": e["intent"] == p.get("intent"),
            "entities": e.get("entities", []),
            "predicted_entities": p.get("entities", []),
        }
        for e, p in zip(examples, predictions, strict=True)
    ]
    ent, per_entity, by_token = None, {}, None
    if with_entities:
        gold_entities = [e.get("entities", []) for e in examples]
        predicted_entities = [p.get("entities", []) for p in predictions]
        ent, per_entity = entity_scores(gold_entities, predicted_entities)
        by_token = token_scores(gold_entities, predicted_entities, tokens) if tokens is not None else None
    return EvaluationResult(
        intent_f1=float(f1),
        intent_precision=float(precision),
        intent_accuracy=float(accuracy_score(gold, pred)),
        intent_macro_f1=macro,
        per_intent=per_intent,
        entity_f1=ent["f1"] if ent else None,
        entity_precision=ent["precision"] if ent else None,
        entity_recall=ent["recall"] if ent else None,
        per_entity=per_entity,
        entity_token_f1=by_token["f1"] if by_token else None,
        entity_token_precision=by_token["precision"] if by_token else None,
        entity_token_accuracy=by_token["accuracy"] if by_token else None,
        utterances=utterances,
    )


def format_table(result: EvaluationResult, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"intent F1 (weighted) {result.intent_f1:.4f}  accuracy {result.intent_accuracy:.4f}  "
                 f"macro F1 {result.intent_macro_f1:.4f}")
    if result.entity_f1 is not None:
        lines.append(f"entity F1 {result.entity_f1:.4f}  precision {result.entity_precision:.4f}  "
                     f"recall {result.entity_recall:.4f}")
    if result.entity_token_f1 is not None:
        lines.append(f"entity tokens (as rasa_nlu.test) F1 {result.entity_token_f1:.4f}  precision "
                     f"{result.entity_token_precision:.4f}  accuracy {result.entity_token_accuracy:.4f}")
    width = max([len(k) for k in result.per_intent] + [6])
    lines.append(f"{'intent':<{width}}  precision  recall     f1  support")
    for name, m in sorted(result.per_intent.items()):
        lines.append(f"{name:<{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:5.3f}  {m['support']:7d}")
    return "\n".join(lines)
