"""Live agreement: candidate and active predict the same recent production messages, before a swap.

``agreement(candidate, active, messages, n)`` takes the newest ``n`` unique messages (unique by
``inbox.key``), lets both models predict them and returns the report's ``live`` section:
``messages`` (how many were compared), ``disagreement`` (the share whose intents differ), ``disagreeing``
(that count) and ``moves``: the (active intent -> candidate intent) pairs, most frequent first, each with a few
example texts (the report and review page are in the store; never sent to Slack). No labels needed: it
says how users would feel the swap, not who is right.
"""
from __future__ import annotations

from collections import Counter

from nlu_ci.messages import Message
from nlu_ci.messages.inbox import key

MAX_MOVES, MAX_EXAMPLES = 10, 3


def unique_recent(messages: list[Message], n: int) -> list[str]:
    """The newest ``n`` distinct texts (``messages`` newest first, as readers return them)."""
    seen, out = set(), []
    for m in messages:
        k = key(m.text)
        if k and k not in seen:
            seen.add(k)
            out.append(m.text)
            if len(out) == n:
                break
    return out


def agreement(candidate, active, messages: list[Message], n: int = 500) -> dict:
    """``candidate`` and ``active``: anything with ``predict(texts) -> [{"intent": ...}]`` (engine Model)."""
    texts = unique_recent(messages, n)
    if not texts or active is None:
        return {"messages": len(texts), "disagreement": None, "disagreeing": 0, "moves": []}
    new, old = candidate.predict(texts), active.predict(texts)
    pairs = [(o.get("intent"), c.get("intent"), t) for t, c, o in zip(texts, new, old, strict=True)
             if o.get("intent") != c.get("intent")]
    counts = Counter((a, b) for a, b, _ in pairs)
    moves = [{"from": a, "to": b, "count": k,
              "examples": [t for x, y, t in pairs if (x, y) == (a, b)][:MAX_EXAMPLES]}
             for (a, b), k in counts.most_common(MAX_MOVES)]
    return {"messages": len(texts), "disagreement": len(pairs) / len(texts), "disagreeing": len(pairs),
            "moves": moves}
