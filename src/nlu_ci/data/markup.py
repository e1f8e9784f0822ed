"""Entity markup inside one example line, as Rasa writes it in Markdown (1.x) and YAML (2.x/3.x).

- ``[text](entity)`` and ``[text](entity:value)`` (rasa_nlu 0.15 Markdown, Rasa 1.x)
- ``[text]{"entity": "city", "value": "Berlin", "role": "departure", "group": "1"}`` (Rasa 2.x/3.x)

``parse(line)`` returns the plain text, the entities (offsets in the plain text) and what rasa_nlu 0.15
cannot learn (roles, groups) or could not read (a ``{...}`` that is not a JSON object with an ``entity``),
so the reader can say so with the file and line instead of training on the literal markup.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# [text](entity) | [text](entity:value) | [text]{json}
ENTITY = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<paren>[^)]*)\)|(?P<json>\{[^{}]*\}))")
JSON_MARKUP = re.compile(r"\[[^\]]+\]\{[^{}]*\}")
UNSUPPORTED_KEYS = ("role", "group")


@dataclass
class Parsed:
    text: str
    entities: list[dict] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)  # "role", "group": dropped, the entity kept
    unreadable: list[str] = field(default_factory=list)   # markup dropped (kept as plain text)


def _annotation(match: re.Match) -> tuple[str | None, str | None, list[str], str | None]:
    """(entity, value, unsupported keys, problem) of one match."""
    if match.group("paren") is not None:
        entity, _, value = match.group("paren").partition(":")
        entity = entity.strip()
        return (entity or None), (value or None), [], None if entity else "empty entity name"
    try:
        spec = json.loads(match.group("json"))
    except json.JSONDecodeError as err:
        return None, None, [], f"not JSON ({err.msg})"
    if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str) or not spec["entity"].strip():
        return None, None, [], "no 'entity' name"
    value = spec.get("value")
    unsupported = [k for k in UNSUPPORTED_KEYS if spec.get(k) not in (None, "")]
    return spec["entity"].strip(), (str(value) if value is not None else None), unsupported, None


def parse(line: str) -> Parsed:
    """Plain text and entities of one annotated example."""
    out = Parsed("")
    pieces: list[str] = []
    pos = length = 0
    for match in ENTITY.finditer(line):
        before = line[pos:match.start()]
        pieces.append(before)
        length += len(before)
        text = match.group("text")
        entity, value, unsupported, problem = _annotation(match)
        if problem:
            out.unreadable.append(f"{match.group(0)[:60]!r}: {problem}")
        else:
            out.entities.append({"start": length, "end": length + len(text), "value": value or text,
                                 "entity": entity})
            out.unsupported.extend(f"{k} of {match.group(0)[:60]!r}" for k in unsupported)
        pieces.append(text)
        length += len(text)
        pos = match.end()
    pieces.append(line[pos:])
    out.text = "".join(pieces)
    return out


def synonyms_of(parsed: Parsed) -> dict[str, str]:
    """Annotations whose value differs from their text are synonyms (as rasa_nlu's Markdown reader adds them)."""
    out = {}
    for e in parsed.entities:
        span = parsed.text[e["start"]:e["end"]]
        if span != e["value"]:
            out[span] = e["value"]
    return out


def has_json_markup(text: str) -> bool:
    return JSON_MARKUP.search(text) is not None


def rewrite_markdown(raw: str, where: str) -> tuple[str, list[str], list[dict]]:
    """Markdown with ``[text]{...}`` annotations -> the ``[text](entity:value)`` form rasa_nlu 0.15 reads.

    Returns (text, notes, repairs): a note per annotation with a role/group (ignored), a repair per
    annotation that could not be read (its text is kept, the annotation dropped), each naming file and line.
    """
    notes: list[str] = []
    repairs: list[dict] = []
    lines = raw.splitlines()
    for n, line in enumerate(lines, start=1):
        if not has_json_markup(line):
            continue

        def convert(match: re.Match, n=n) -> str:
            if match.group("json") is None:
                return match.group(0)
            entity, value, unsupported, problem = _annotation(match)
            if problem:
                repairs.append({"where": f"{where}:{n}", "action": "dropped", "entity": None,
                                "reason": f"unreadable entity markup {match.group(0)[:60]!r}: {problem}"})
                return match.group("text")
            for key in unsupported:
                notes.append(f"{where}:{n}: entity {key} in {match.group(0)[:60]!r} ignored "
                             f"(rasa_nlu 0.15 cannot learn entity {key}s)")
            if value is not None and value != match.group("text") and ")" not in value:
                return f"[{match.group('text')}]({entity}:{value})"
            return f"[{match.group('text')}]({entity})"

        lines[n - 1] = ENTITY.sub(convert, line)
    return "\n".join(lines) + "\n", notes, repairs
