"""Live agreement: candidate and active predict the same recent production messages, before a swap.

``agreement(candidate, active, messages, n)`` takes the newest ``n`` unique messages (unique by
``inbox.key``), lets both models predict them and returns the report's ``live`` section:
``messages`` (how many were compared), ``disagreement`` (the share whose intents differ), ``disagreeing``
(that count) and ``moves``: the (active intent -> candidate intent) pairs, most frequent first, each with a few
example texts (the report and review page are in the store; never sent to Slack). No labels needed: it
says how users would feel the swap, not who is right.

``stage`` also records the run's ``INBOX_TOP`` best inbox entries (``inbox.build`` over the same messages, the
active model's intent as the suggestion, the candidate's beside it) as ``live["inbox"]``: text (masked as read),
count, suggested intent, confidence, candidate intent, priority and ``why`` (``inbox.reasons``), for the review
page; the full file is ``nlu-ci inbox``'s.
"""
from __future__ import annotations

import logging
from collections import Counter

from nlu_ci import gate
from nlu_ci.messages import Message, inbox, sources
from nlu_ci.messages.inbox import key

log = logging.getLogger(__name__)

MAX_MOVES, MAX_EXAMPLES, INBOX_TOP = 10, 3, 10


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


def top_inbox(candidate, active, messages: list[Message], training_texts, limit: int = INBOX_TOP) -> dict:
    """The best ``limit`` inbox entries of a run: the active model suggests (the candidate when there is none)."""
    suggest = active if active is not None else candidate
    built = inbox.build(messages, training_texts, suggest.predict, limit=limit,
                        predict_candidate=candidate.predict if active is not None else None)
    return {"unique": built["unique"], "training_examples": built["training_examples"], "left_out": built["left_out"],
            "entries": [{"text": e.text, "count": e.count, "intent": e.intent, "confidence": round(e.confidence, 4),
                         "candidate_intent": e.candidate_intent, "priority": round(e.priority, 4),
                         "why": inbox.reasons(e)} for e in built["entries"]]}


def stage(settings, candidate, active, report: dict, training_texts=()) -> dict | None:
    """The ``live`` section of a run: read the messages (``--messages``), compare the two models on the newest
    ``--live-messages`` unique ones. Nothing configured: None (no section). A source that is down: a warning
    in the report, the run goes on (``--strict-messages``: ``DataError``, exit 2)."""
    batch = sources.read(settings)
    if batch.source is None:
        return None
    report.setdefault("warnings", []).extend(batch.warnings)
    section = dict(agreement(candidate, active, batch.messages, settings.live_messages), source=batch.source,
                   read=batch.summary()["messages"], skipped=batch.summary()["skipped"])
    if batch.messages:
        section["inbox"] = top_inbox(candidate, active, batch.messages, training_texts)
    report["live"] = section
    if section["disagreement"] is not None:
        log.info("live agreement: candidate and active disagree on %d of %d production messages (%.1f%%)",
                 section["disagreeing"], section["messages"], 100 * section["disagreement"])
    return section


def check(section: dict | None, max_disagreement: float | None) -> gate.Check:
    """The gate check ``max_live_disagreement`` (off: None, the default; report only)."""
    values = {"max": max_disagreement, "disagreement": (section or {}).get("disagreement"),
              "messages": (section or {}).get("messages", 0)}
    if not section or section.get("disagreement") is None:
        return gate.Check("max_live_disagreement", True, "not applicable: no production messages compared", values,
                          enabled=False)
    share = section["disagreement"]
    detail = f"candidate and active disagree on {share:.1%} of {section['messages']} production messages"
    if max_disagreement is None:
        return gate.Check("max_live_disagreement", True, f"report only: {detail}", values, enabled=False)
    passed = share <= max_disagreement
    return gate.Check("max_live_disagreement", passed, f"{detail} ({'<=' if passed else '>'} {max_disagreement:.1%})",
                      values)


def apply(decision: gate.Decision, section: dict | None, max_disagreement: float | None) -> gate.Decision:
    """``decision`` with the live check added (nothing when no messages are configured: ``section`` None); a
    failing enabled check turns a promotion into a rejection."""
    if section is None:
        return decision
    return gate.with_check(decision, check(section, max_disagreement))
