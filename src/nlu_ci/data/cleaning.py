"""Tolerant, visible repair of entity annotations (public datasets have glitches; rasa_nlu trains through them).

The rule, per entity of every example:

- whitespace at a span's edges is trimmed (``'in a year '`` -> ``'in a year'``; the value too, when it was
  the span's text) — a *repair*;
- a span that still does not sit on word boundaries (``'one pm'`` cut out of ``'one pmnear'``), lies outside
  the text, is empty or lacks an entity name is *dropped*: the example keeps its text and intent, it only
  loses that annotation.

Each repair and drop is listed (file, example, text, entity, offsets, reason). When more than
``MAX_REPAIR_SHARE`` of the examples (default 1 %; ``--max-repair-share`` / ``NLU_CI_MAX_REPAIR_SHARE``)
needed one, the data is refused (``DataError``, exit 2) naming the first offenders: a handful of glitches
should not stop a nightly job, many mean the export or the annotation tool is broken.
"""
from __future__ import annotations

import logging
from pathlib import Path

from nlu_ci.data import Notes, markup, notes_of
from nlu_ci.errors import DataError

log = logging.getLogger(__name__)

MAX_REPAIR_SHARE = 0.01
SHOWN_OFFENDERS = 3


def _word_char(c: str) -> bool:
    return c.isalnum()


def _fix(text: str, entity) -> tuple[dict | None, str | None]:
    """(the entity to keep or None, what was wrong or None)."""
    if not isinstance(entity, dict):
        return None, "is not an object"
    name = entity.get("entity")
    start, end = entity.get("start"), entity.get("end")
    if not isinstance(name, str) or not name.strip():
        return None, "has no entity name"
    if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
        return None, f"offsets {start!r}:{end!r} are not whole numbers"
    if not 0 <= start < end <= len(text):
        return None, f"offsets {start}:{end} do not fit the text (length {len(text)})"
    span = text[start:end]
    stripped = span.strip()
    if not stripped:
        return None, f"offsets {start}:{end} cut only whitespace"
    fixed, problem = dict(entity), None
    if stripped != span:
        new_start = start + (len(span) - len(span.lstrip()))
        new_end = new_start + len(stripped)
        fixed.update(start=new_start, end=new_end)
        if entity.get("value") in (None, span):
            fixed["value"] = stripped
        problem = f"offsets {start}:{end} ({span!r}) had whitespace at the edges: now {new_start}:{new_end}"
        start, end = new_start, new_end
    if (start > 0 and _word_char(text[start - 1]) and _word_char(text[start])) or \
            (end < len(text) and _word_char(text[end]) and _word_char(text[end - 1])):
        return None, f"offsets {start}:{end} cut {text[start:end]!r} inside a word (offsets do not match the text)"
    return fixed, problem


def clean(data, where: Path | str) -> Notes:
    """Repair or drop the entity annotations of one file's examples in place; the notes of the file (its
    reader's plus these repairs) are returned and stay attached to ``data``."""
    notes = notes_of(data)
    notes.examples = len(data.training_examples)
    for i, message in enumerate(data.training_examples):
        entities = message.get("entities")
        if not entities:
            continue
        kept = []
        for entity in entities:
            fixed, problem = _fix(message.text, entity)
            for key in markup.UNSUPPORTED_KEYS:  # Rasa 2+ JSON: {"entity": ..., "role": ...}
                if fixed is not None and fixed.pop(key, None) not in (None, ""):
                    notes.notes.append(f"{where} example {i} ({message.text[:40]!r}): entity {key} of "
                                       f"'{fixed['entity']}' ignored (rasa_nlu 0.15 cannot learn roles or groups)")
            if fixed is not None:
                kept.append(fixed)
            if problem:
                name = entity.get("entity") if isinstance(entity, dict) else None
                notes.repairs.append({"where": str(where), "example": i, "text": message.text[:80], "entity": name,
                                      "action": "trimmed" if fixed is not None else "dropped", "reason": problem})
        message.set("entities", kept)
    return notes


def describe(repair: dict) -> str:
    """One line: where, which example and entity, what was done and why."""
    example = f" example {repair['example']}" if "example" in repair else ""
    text = f" ({repair['text'][:40]!r})" if repair.get("text") else ""
    entity = f" entity '{repair['entity']}'" if repair.get("entity") else ""
    return f"{repair['where']}{example}{text}:{entity} {repair['reason']} ({repair['action']})"


def touched(repairs: list[dict]) -> int:
    """How many examples needed a repair (several repairs of one example count once)."""
    return len({(r["where"], r.get("example", r.get("text"))) for r in repairs})


def share(notes: Notes) -> float:
    return touched(notes.repairs) / notes.examples if notes.examples else 0.0


def enforce(notes: Notes, where: Path | str, limit: float = MAX_REPAIR_SHARE) -> None:
    """``DataError`` when more than ``limit`` of the examples needed a repair; else log them."""
    n = touched(notes.repairs)
    if not n:
        return
    if share(notes) > limit:
        first = "; ".join(describe(r) for r in notes.repairs[:SHOWN_OFFENDERS])
        raise DataError(f"{where}: {n} of {notes.examples} examples ({share(notes):.1%}) needed entity repairs, "
                        f"above the limit of {limit:.1%} (--max-repair-share / NLU_CI_MAX_REPAIR_SHARE); "
                        f"first: {first}")
    for repair in notes.repairs:
        log.warning("data repair: %s", describe(repair))


def combine(datasets: list, files: list[Path], folder_notes: list[str]) -> Notes:
    """Clean each file's data and gather every note and repair (before the files are merged)."""
    total = Notes(skipped=list(folder_notes))
    for data, path in zip(datasets, files, strict=True):
        total.extend(clean(data, path))
    for note in total.skipped:
        log.info("%s", note)
    for note in total.notes:
        log.warning("%s", note)
    return total
