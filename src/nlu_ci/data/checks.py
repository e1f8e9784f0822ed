"""What ``nlu-ci validate`` (and the ``validate`` stage of ``run``) finds in training data.

Each finding: ``{"check", "severity", "message", "count", "items"}``; severity ``error`` (the run would
fail), ``warning`` (it trains, but something is probably wrong; ``--strict-data`` makes it fail) or ``info``.

| check | severity | what |
|---|---|---|
| ``conflicting_labels`` | warning | the same text (case and spacing ignored) under two or more intents |
| ``duplicates`` | warning | the same text under the same intent more than once |
| ``near_duplicate_intents``, ``near_duplicate_entities`` | warning | names equal but for case/separators (``Size``/``size``, ``get_weather``/``getWeather``), or one edit apart (``affirm``/``affirms``; names of 5+ characters, not differing in a digit only) |
| ``too_few_examples`` | error with the hash split, else warning | intents under the split's minimum |
| ``unused_synonyms`` | warning | synonyms whose text is no annotated entity of any example (they never apply) |
| ``train_test_overlap`` | warning | ``--test-data`` examples whose text is also in the training data |
| ``entity_repairs`` | warning | annotations trimmed or dropped on loading (``cleaning``) |
| ``ignored_features`` | warning | what rasa_nlu 0.15 cannot learn (roles, groups, metadata, ...) |
| ``skipped_files`` | info | files of the folder that are not NLU data |
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from nlu_ci.data import Notes, cleaning
from nlu_ci.data.text import MIN_EXAMPLES_PER_INTENT, normalise

SHOWN = 20
MAX_NAMES_FOR_EDIT_DISTANCE = 2000


def finding(check: str, severity: str, message: str, items: list) -> dict:
    return {"check": check, "severity": severity, "message": message, "count": len(items), "items": items[:SHOWN]}


def _quoted(items: list[str], n: int = 3) -> str:
    return ", ".join(repr(i) for i in items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1 (one insertion, deletion or substitution), in O(len)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)):] == b[i + 1:]


def _key(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.lower())


def near_duplicates(names: list[str]) -> list[list[str]]:
    """Pairs of distinct names that are probably one name written twice."""
    names = sorted(set(names))
    pairs = []
    by_key = defaultdict(list)
    for name in names:
        by_key[_key(name)].append(name)
    pairs += [group for group in by_key.values() if len(group) > 1]
    if len(names) <= MAX_NAMES_FOR_EDIT_DISTANCE:
        keys = sorted(by_key)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                if min(len(a), len(b)) >= 5 and within_one_edit(a, b) and \
                        re.sub(r"\d", "", a) != re.sub(r"\d", "", b):
                    pairs.append([by_key[a][0], by_key[b][0]])
    return pairs


def _texts(data) -> dict[str, Counter]:
    by_text: dict[str, Counter] = defaultdict(Counter)
    for m in data.training_examples:
        if m.get("intent"):
            by_text[normalise(m.text)][m.get("intent")] += 1
    return by_text


def label_checks(data) -> list[dict]:
    by_text = _texts(data)
    out = []
    conflicts = [{"text": t, "intents": sorted(c)} for t, c in sorted(by_text.items()) if len(c) > 1]
    if conflicts:
        first = conflicts[0]
        out.append(finding("conflicting_labels", "warning", f"{len(conflicts)} texts are labelled with two or more "
                           f"intents, e.g. {first['text']!r} ({', '.join(first['intents'])})", conflicts))
    dups = [{"text": t, "intent": i, "count": n} for t, c in sorted(by_text.items()) for i, n in c.items() if n > 1]
    if dups:
        out.append(finding("duplicates", "warning", f"{len(dups)} texts appear more than once under the same intent, "
                           f"e.g. {dups[0]['text']!r} ({dups[0]['count']}x {dups[0]['intent']})", dups))
    return out


def name_checks(data) -> list[dict]:
    out = []
    intents = [m.get("intent") for m in data.training_examples if m.get("intent")]
    entities = [e["entity"] for m in data.training_examples for e in (m.get("entities") or [])]
    for kind, singular, names in (("intents", "intent", intents), ("entities", "entity", entities)):
        pairs = near_duplicates(names)
        if pairs:
            shown = "; ".join("/".join(p) for p in pairs[:3])
            out.append(finding(f"near_duplicate_{kind}", "warning",
                               f"{len(pairs)} group(s) of {singular} names look like one name written twice: "
                               f"{shown}", pairs))
    return out


def size_checks(data, hash_split: bool) -> list[dict]:
    counts = Counter(m.get("intent") for m in data.training_examples if m.get("intent"))
    small = [{"intent": i, "examples": n} for i, n in sorted(counts.items()) if n < MIN_EXAMPLES_PER_INTENT]
    if not small:
        return []
    severity = "error" if hash_split else "warning"
    return [finding("too_few_examples", severity, f"{len(small)} intents have fewer than {MIN_EXAMPLES_PER_INTENT} "
                    f"examples (the split's minimum): {_quoted([s['intent'] for s in small])}", small)]


def synonym_checks(data) -> list[dict]:
    spans = {m.text[e["start"]:e["end"]].lower() for m in data.training_examples for e in (m.get("entities") or [])}
    unused = [{"text": t, "value": v} for t, v in sorted(data.entity_synonyms.items()) if t.lower() not in spans]
    if not unused:
        return []
    return [finding("unused_synonyms", "warning", f"{len(unused)} synonyms are no annotated entity of any example "
                    f"(they never apply): {_quoted([u['text'] for u in unused])}", unused)]


def overlap_checks(data, test: list[dict] | None) -> list[dict]:
    if not test:
        return []
    train = {normalise(m.text) for m in data.training_examples}
    both = sorted({normalise(e["text"]) for e in test} & train)
    if not both:
        return []
    return [finding("train_test_overlap", "warning", f"{len(both)} test texts are also training examples "
                    f"(they inflate the scores): {_quoted(both)}", both)]


def note_checks(notes: Notes, test_notes: Notes | None = None) -> list[dict]:
    out = []
    repairs = notes.repairs + (test_notes.repairs if test_notes else [])
    if repairs:
        lines = [cleaning.describe(r) for r in repairs]
        out.append(finding("entity_repairs", "warning", f"{cleaning.touched(repairs)} examples had entity annotations "
                           f"trimmed or dropped: {lines[0]}", lines))
    ignored = notes.notes + (test_notes.notes if test_notes else [])
    if ignored:
        out.append(finding("ignored_features", "warning", f"{len(ignored)} things rasa_nlu 0.15 cannot use were "
                           f"ignored: {ignored[0]}", ignored))
    skipped = notes.skipped + (test_notes.skipped if test_notes else [])
    if skipped:
        out.append(finding("skipped_files", "info", f"{len(skipped)} files are not NLU data and were skipped: "
                           f"{skipped[0]}", skipped))
    return out


def run_checks(data, notes: Notes, *, test: list[dict] | None = None, test_notes: Notes | None = None,
               hash_split: bool = True) -> list[dict]:
    """Every check on loaded data (and the test examples of ``--test-data``), errors first."""
    found = (size_checks(data, hash_split) + label_checks(data) + name_checks(data) + synonym_checks(data)
             + overlap_checks(data, test) + note_checks(notes, test_notes))
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f["severity"]])


def failing(findings: list[dict], strict: bool) -> list[dict]:
    """The findings that fail: errors, and warnings too when ``strict``."""
    return [f for f in findings if f["severity"] == "error" or (strict and f["severity"] == "warning")]


def format_text(findings: list[dict], title: str) -> str:
    lines = [title]
    if not findings:
        lines.append("  no problems found")
    for f in findings:
        lines.append(f"  {f['severity'].upper():<7} {f['check']}: {f['message']}")
    return "\n".join(lines)
