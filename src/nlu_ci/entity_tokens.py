"""Entity scores per token, as rasa_nlu 0.15's ``rasa_nlu.test`` computes them (beside nlu-ci's exact spans).

rasa_nlu labels every token of the test texts (its pipeline's own tokenizer) with the entity type that covers
it ("no_entity" for none; with several, the one sharing most characters), for the gold annotations and for the
predictions, then scores the two label lists with scikit-learn: weighted precision and F1 over every label,
``no_entity`` included, and accuracy. These numbers are dominated by ``no_entity`` tokens and are much higher
than exact-span F1; they are here so that a team comparing with ``rasa_nlu.test`` sees the same numbers.

rasa_nlu reports them per entity extractor; nlu-ci scores all predicted entities together, which is the same
number for a pipeline with one extractor (every shipped config). rasa_nlu refuses overlapping entities of
different types under ``CRFEntityExtractor`` (ValueError); here the best-fitting one is taken.
"""
from __future__ import annotations

NO_ENTITY = "no_entity"


def _overlap(token: tuple[int, int], entity: dict) -> int:
    return max(0, min(token[1], int(entity["end"])) - max(token[0], int(entity["start"])))


def token_label(token: tuple[int, int], entities: list[dict]) -> str:
    best, best_overlap = NO_ENTITY, 0
    for entity in entities:
        overlap = _overlap(token, entity)
        if overlap > best_overlap:  # the first of equals wins, as numpy.argmax
            best, best_overlap = entity["entity"], overlap
    return best


def token_scores(gold: list[list[dict]], predicted: list[list[dict]],
                 tokens: list[list[tuple[int, int]]]) -> dict | None:
    """``{"precision", "f1", "accuracy"}`` over every token of every text, or None without tokens or entities."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score

    if not any(gold) and not any(predicted):
        return None
    targets, preds = [], []
    for g, p, toks in zip(gold, predicted, tokens, strict=True):
        for token in toks:
            targets.append(token_label(token, g))
            preds.append(token_label(token, p))
    if not targets:
        return None
    return {"precision": float(precision_score(targets, preds, average="weighted", zero_division=0)),
            "f1": float(f1_score(targets, preds, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(targets, preds))}
