"""Rasa 2.x/3.x YAML NLU data (``version: "3.1"``, ``nlu:`` items) -> rasa_nlu 0.15 ``TrainingData``.

Read item by item, keeping line numbers, so every warning names ``file:line``:

- ``- intent: x`` with ``examples: |`` (``- text [value](entity)`` lines) or a list of ``- text: ...`` mappings
  (their ``metadata`` is ignored, with one note per file); a retrieval intent ``chitchat/ask_name`` trains as
  an ordinary intent (rasa_nlu 0.15 has no response selector), with a note
- ``- synonym: value``, ``- regex: name``, ``- lookup: name`` (inline lists only) -> ``entity_synonyms``,
  ``regex_features``, ``lookup_tables``
- entity roles and groups: the entity is kept, the role/group dropped, with a note naming the line

The file is composed into YAML nodes (nothing is constructed, so no tag of any library runs), aliases are
refused (NLU data has no use for them, and they are how a small file expands to billions of values) and
nesting is limited to ``MAX_DEPTH``; any problem is a ``DataError`` naming the file and line.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from nlu_ci.data import Notes, markup
from nlu_ci.errors import DataError

MAX_DEPTH = 20
ITEM = re.compile(r"^\s*[-*+]\s?(?P<item>.*)$")
KINDS = ("intent", "synonym", "regex", "lookup")
IGNORED_TOP_KEYS = ("responses", "stories", "rules", "intents", "entities", "slots", "forms", "actions",
                    "session_config", "pipeline", "policies", "language", "assistant_id", "recipe")


class _Refused(Exception):
    def __init__(self, mark, message: str):
        super().__init__(message)
        self.mark = mark


class _Composer(yaml.SafeLoader):
    """Composes nodes only; refuses aliases and deep nesting before they cost anything."""

    _depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise _Refused(self.peek_event().start_mark, "YAML aliases are not allowed in NLU data")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(raw: str, where: Path | str):
    loader = _Composer(raw)
    try:
        return loader.get_single_node()
    except _Refused as err:
        raise DataError(f"{where}:{err.mark.line + 1}: {err}: refused") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f":{mark.line + 1}" if mark else ""
        raise DataError(f"{where}{at}: invalid YAML: {str(getattr(err, 'problem', None) or err)[:200]}") from None
    finally:
        loader.dispose()


def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, where: str) -> dict:
    if not isinstance(node, yaml.MappingNode):
        raise DataError(f"{where}:{_line(node)}: expected a mapping (key: value)")
    out = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode):
            out[key.value] = value
    return out


def _string(node, where: str, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise DataError(f"{where}:{_line(node)}: {what} must be a string")
    return node.value


def top_keys(node) -> list[str]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]


def _block_lines(node, where: str, notes: Notes) -> list[tuple[int, str]]:
    """(line number, text) of each ``- item`` of an ``examples`` value."""
    if isinstance(node, yaml.ScalarNode):
        first = _line(node) + (1 if node.style in ("|", ">") else 0)
        out = []
        for i, line in enumerate(node.value.splitlines()):
            if not line.strip():
                continue
            match = ITEM.match(line)
            if not match or not match.group("item").strip():
                notes.notes.append(f"{where}:{first + i}: {line.strip()[:60]!r} is not a '- example' item: skipped")
                continue
            out.append((first + i, match.group("item").strip()))
        return out
    if isinstance(node, yaml.SequenceNode):
        out, metadata = [], 0
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                out.append((_line(item), item.value.strip()))
                continue
            fields = _mapping(item, where)
            if "text" not in fields:
                raise DataError(f"{where}:{_line(item)}: example has no 'text'")
            metadata += "metadata" in fields
            out.append((_line(fields["text"]), _string(fields["text"], where, "'text'").strip()))
        if metadata:
            notes.notes.append(f"{where}:{_line(node)}: example metadata ignored ({metadata} examples; "
                               "rasa_nlu 0.15 has no use for it)")
        return out
    raise DataError(f"{where}:{_line(node)}: 'examples' must be a '|' block of '- ' lines or a list")


def _intent(name: str, fields: dict, where: str, notes: Notes, out: dict) -> None:
    from rasa_nlu.training_data import Message

    if "/" in name:
        notes.notes.append(f"{where}:{_line(fields['intent'])}: retrieval intent {name!r} trains as an ordinary "
                           "intent (rasa_nlu 0.15 has no response selector)")
    for n, line in _block_lines(fields["examples"], where, notes):
        parsed = markup.parse(line)
        for what in parsed.unsupported:
            notes.notes.append(f"{where}:{n}: entity {what} ignored (rasa_nlu 0.15 cannot learn roles or groups)")
        for problem in parsed.unreadable:
            notes.repairs.append({"where": f"{where}:{n}", "action": "dropped", "entity": None, "text": parsed.text,
                                  "reason": f"unreadable entity markup {problem}"})
        if not parsed.text.strip():
            notes.notes.append(f"{where}:{n}: empty example skipped")
            continue
        message = Message(parsed.text, {"intent": name})
        if parsed.entities:
            message.set("entities", parsed.entities)
        out["examples"].append(message)
        out["synonyms"].update(markup.synonyms_of(parsed))


def _item(node, where: str, notes: Notes, out: dict) -> None:
    fields = _mapping(node, where)
    kinds = [k for k in KINDS if k in fields]
    if len(kinds) != 1:
        notes.notes.append(f"{where}:{_line(node)}: item with keys {sorted(fields)[:5]} is not an intent, synonym, "
                           "regex or lookup: skipped")
        return
    kind = kinds[0]
    name = _string(fields[kind], where, f"'{kind}'").strip()
    if not name:
        raise DataError(f"{where}:{_line(node)}: empty {kind} name")
    if "examples" not in fields:
        raise DataError(f"{where}:{_line(node)}: {kind} {name!r} has no 'examples'")
    extra = sorted(set(fields) - {kind, "examples", "metadata"})
    if extra:
        notes.notes.append(f"{where}:{_line(node)}: {kind} {name!r}: keys {', '.join(extra)} ignored")
    if kind == "intent":
        _intent(name, fields, where, notes, out)
        return
    items = [text for _, text in _block_lines(fields["examples"], where, notes)]
    if kind == "synonym":
        out["synonyms"].update({text: name for text in items})
    elif kind == "regex":
        out["regex"].extend({"name": name, "pattern": text} for text in items)
    else:
        out["lookup"].append({"name": name, "elements": items})


def read(raw: str, path: Path | str, root=None):
    """(TrainingData, Notes) of one Rasa YAML NLU file (``root``: an already composed node)."""
    from rasa_nlu.training_data import TrainingData

    where = str(path)
    root = compose(raw, where) if root is None else root
    top = _mapping(root, where) if root is not None else {}
    if "nlu" not in top:
        raise DataError(f"{where}: Rasa YAML without an 'nlu:' section (keys: {', '.join(top) or 'none'})")
    notes = Notes()
    version = top.get("version")
    if version is not None and not _string(version, where, "'version'").startswith(("2", "3")):
        notes.notes.append(f"{where}:{_line(version)}: format version {version.value!r} is not 2.x or 3.x; "
                           "read as 3.x")
    ignored = [k for k in top if k not in ("nlu", "version")]
    if ignored:
        notes.notes.append(f"{where}: sections {', '.join(ignored)} ignored (only 'nlu:' trains rasa_nlu)")
    nlu = top["nlu"]
    out: dict = {"examples": [], "synonyms": {}, "regex": [], "lookup": []}
    if isinstance(nlu, yaml.ScalarNode) and nlu.value in ("", "~", "null"):
        nlu = yaml.SequenceNode("tag:yaml.org,2002:seq", [])
    if not isinstance(nlu, yaml.SequenceNode):
        raise DataError(f"{where}:{_line(nlu)}: 'nlu' must be a list of '- intent:' (synonym, regex, lookup) items")
    for item in nlu.value:
        _item(item, where, notes, out)
    notes.examples = len(out["examples"])
    data = TrainingData(out["examples"], out["synonyms"], out["regex"], out["lookup"])
    return data, notes
