"""The inbox as a Rasa 3 YAML NLU file an annotator corrects and moves into the training data.

Each message sits under the intent the active model suggests (``- intent: X`` items, the group with the most
useful message first), as a ``- text:`` example with the model's entities as ``[span](entity)`` markup, and a
YAML comment above it with what made it rank: confidence, the runner-up and margin, how often it was seen,
the candidate's intent when it disagrees, the words no training example has. nlu-ci reads the file as
training data (``nlu-ci validate --data inbox.yml``); the comments and the suggestion are for people.
"""
from __future__ import annotations

import yaml

from nlu_ci.messages.inbox import Entry

HEADER = """# nlu-ci inbox: {n} production messages that are not in the training data, most useful to annotate first.
# source: {source}; model: {model}; made {made}
# Each example sits under the intent the model suggests. For each: correct the intent (move the line under the
# right '- intent:'), fix or add [entity](name) markup, delete what is noise; then move the examples into the
# training data. This file holds user messages (personal data): delete it when done.
"""


def quoted(text: str) -> str:
    """``text`` as one YAML double-quoted scalar (every character escaped as YAML needs)."""
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=1 << 30).rstrip("\n").removesuffix(
        "\n...")


def markup(entry: Entry) -> str:
    """The text with the predicted entities as ``[span](entity)``; plain when markup would be ambiguous."""
    text = entry.text
    spans = sorted((e["start"], e["end"], e["entity"]) for e in entry.entities)
    if not spans or any(c in text for c in "[]()") or any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
        return text
    out, at = [], 0
    for start, end, name in spans:
        if not (0 <= start < end <= len(text)) or not str(name).replace("_", "").replace("-", "").isalnum():
            return text
        out += [text[at:start], f"[{text[start:end]}]({name})"]
        at = end
    return "".join(out + [text[at:]])


def comment(entry: Entry) -> str:
    parts = [f"confidence {entry.confidence:.2f}"]
    if entry.runner_up:
        parts.append(f"runner-up {entry.runner_up} (margin {entry.margin:.2f})")
    parts.append(f"seen {entry.count}x")
    if entry.candidate_intent and entry.candidate_intent != entry.intent:
        parts.append(f"candidate says {entry.candidate_intent}")
    if entry.unseen:
        shown = ", ".join(entry.unseen[:5]) + (", ..." if len(entry.unseen) > 5 else "")
        parts.append(f"new words: {shown}")
    return " ".join(f"# {'; '.join(parts)}".split())  # one line, whatever a word contains


def render(entries: list[Entry], *, source: str | None, model: str | None, made: str) -> str:
    groups: dict[str, list[Entry]] = {}
    for e in entries:  # entries come best first: so do the groups and the examples in each
        groups.setdefault(e.intent or "unknown", []).append(e)
    lines = [HEADER.format(n=len(entries), source=" ".join(str(source).split()), model=model, made=made),
             'version: "3.1"', "nlu:" if groups else "nlu: []"]
    for intent, members in groups.items():
        lines += [f"- intent: {quoted(intent)}  # suggested by the model", "  examples:"]
        for e in members:
            lines += [f"  {comment(e)}", f"  - text: {quoted(markup(e))}"]
    return "\n".join(lines) + "\n"
