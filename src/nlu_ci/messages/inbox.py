"""The inbox: production messages worth annotating, most useful first.

1. Messages whose key (lower case, word characters only: ``key``) is a training example's key are dropped:
   the data already has them ("Hi!" and "hi" are the same example).
2. Near-duplicates (the same key) collapse into one entry: the most frequent spelling, a count.
3. The active model (and a candidate, when there is one) predicts each entry; the entry's priority is
   ``0.35 * (1 - confidence) + 0.35 * (1 - margin) + 0.2 * disagree + 0.1 * unseen``, with margin the gap
   between the top two intents, disagree 1 when candidate and active predict different intents, unseen the
   share of its words that no training example has. Ties: more frequent first.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nlu_ci import masking
from nlu_ci.messages import Message

WORD = re.compile(r"\w+")
PLACEHOLDER = re.compile(re.escape(masking.EMAIL_MASK) + "|" + re.escape(masking.NUMBER_MASK))
WEIGHTS = {"low_confidence": 0.35, "small_margin": 0.35, "disagree": 0.2, "unseen": 0.1}


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def key(text: str) -> str:
    return " ".join(words(text))


@dataclass
class Entry:
    text: str
    count: int
    last_seen: float | None
    intent: str | None = None
    confidence: float = 0.0
    runner_up: str | None = None
    margin: float = 1.0
    candidate_intent: str | None = None
    unseen: list[str] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    priority: float = 0.0

    def to_dict(self) -> dict:
        return {"text": self.text, "count": self.count, "last_seen": self.last_seen, "intent": self.intent,
                "confidence": round(self.confidence, 4), "runner_up": self.runner_up, "margin": round(self.margin, 4),
                "candidate_intent": self.candidate_intent, "unseen": self.unseen, "entities": self.entities,
                "priority": round(self.priority, 4)}


def collapse(messages: Iterable[Message], known: set[str]) -> tuple[list[Entry], int]:
    """(one entry per key not in ``known``, how many messages were training examples)."""
    spellings: dict[str, Counter] = {}
    last: dict[str, float | None] = {}
    in_training = 0
    for m in messages:
        k = key(m.text)
        if not k:
            continue
        if k in known:
            in_training += 1
            continue
        spellings.setdefault(k, Counter())[m.text] += 1
        if m.timestamp is not None and (last.get(k) is None or m.timestamp > last[k]):
            last[k] = m.timestamp
        last.setdefault(k, None)
    entries = [Entry(c.most_common(1)[0][0], sum(c.values()), last[k]) for k, c in spellings.items()]
    return entries, in_training


def score(entry: Entry, prediction: dict, candidate: dict | None, vocabulary: set[str]) -> None:
    ranking = sorted(prediction.get("intent_ranking") or [], key=lambda r: -r["confidence"])
    entry.intent, entry.confidence = prediction.get("intent"), float(prediction.get("confidence") or 0.0)
    others = [r for r in ranking if r["name"] != entry.intent]
    entry.runner_up = others[0]["name"] if others else None
    entry.margin = max(0.0, entry.confidence - (others[0]["confidence"] if others else 0.0))
    entry.entities = [{k: e[k] for k in ("start", "end", "entity", "value")} for e in prediction.get("entities") or []]
    entry.candidate_intent = candidate.get("intent") if candidate else None
    tokens = words(PLACEHOLDER.sub(" ", entry.text))  # <email>/<number> are masks, not the user's words
    entry.unseen = sorted({w for w in tokens if w not in vocabulary})
    unseen_share = sum(w not in vocabulary for w in tokens) / len(tokens) if tokens else 0.0
    disagree = float(candidate is not None and entry.candidate_intent != entry.intent)
    entry.priority = (WEIGHTS["low_confidence"] * (1 - entry.confidence) + WEIGHTS["small_margin"] * (1 - entry.margin)
                      + WEIGHTS["disagree"] * disagree + WEIGHTS["unseen"] * unseen_share)


def reasons(entry: Entry) -> list[str]:
    """Why ``entry`` ranks where it does, in words (the review page): the parts of its priority that count."""
    out = []
    if entry.confidence < 0.5:
        out.append(f"low confidence ({entry.confidence:.2f})")
    if entry.runner_up and entry.margin < 0.2:
        out.append(f"small margin ({entry.margin:.2f}) over {entry.runner_up}")
    if entry.candidate_intent is not None and entry.candidate_intent != entry.intent:
        out.append(f"the candidate says {entry.candidate_intent}")
    if entry.unseen:
        out.append("words no training example has: " + ", ".join(entry.unseen[:5]))
    return out or ["least certain of the rest"]


def build(messages: list[Message], training_texts: Iterable[str], predict: Callable[[list[str]], list[dict]], *,
          limit: int, predict_candidate: Callable[[list[str]], list[dict]] | None = None) -> dict:
    """The inbox as data: ``entries`` (at most ``limit``, best first) and the counts."""
    training_texts = list(training_texts)
    known = {key(t) for t in training_texts}
    vocabulary = {w for t in training_texts for w in words(t)}
    entries, in_training = collapse(messages, known)
    texts = [e.text for e in entries]
    predictions = predict(texts) if texts else []
    candidates = predict_candidate(texts) if texts and predict_candidate else [None] * len(texts)
    for entry, prediction, candidate in zip(entries, predictions, candidates, strict=True):
        score(entry, prediction, candidate, vocabulary)
    entries.sort(key=lambda e: (-e.priority, -e.count, e.text))
    return {"messages": len(messages), "training_examples": in_training, "unique": len(entries),
            "disagreeing": sum(e.candidate_intent is not None and e.candidate_intent != e.intent for e in entries),
            "entries": entries[:limit], "left_out": max(0, len(entries) - limit)}
