"""Checks of training data that close whole families of hostile input (called by ``dataset`` per file).

- JSON nested deeper than ``MAX_JSON_DEPTH`` is refused (100,000 nested lists would end in a RecursionError).
- Entity ``start``/``end`` must be whole numbers (``14.5``, ``"3"``, ``true`` are refused, naming the example).
- Every regex feature must compile (``(unclosed`` is refused here, not as a crash inside training), and one
  that repeats must run on RE2 (``nlu_ci.regexes``: no backreferences or lookaround beside a repetition).
- Entity synonyms map text to text: a ``null`` or a number among them is refused, naming the value.
- Lookup tables whose ``elements`` name a file: rasa_nlu 0.15 would open any path (a token file, the
  service-account token) and put its lines into the model. Data from the platform may never name a file;
  local data may name only a regular file inside its own data folder (resolved, symlinks followed and
  checked), which is read here (bounded, ``safeio``) and inlined, so rasa_nlu never opens a file itself.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from nlu_ci import regexes, safeio
from nlu_ci.errors import DataError

MAX_JSON_DEPTH = 64
MAX_REGEX_LENGTH = 10_000
_remote: set[Path] = set()


def mark_remote(path: Path | str) -> None:
    """``path`` holds data downloaded from a platform: it may name no local file."""
    _remote.add(Path(path).resolve())


def _is_remote(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == r or r in resolved.parents for r in _remote)




def parse_json(raw: str, where: Path | str) -> Any:
    """``json.loads`` with a nesting limit and one-line errors."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    except RecursionError:
        parsed = None
    if parsed is None and raw.strip() != "null" or not safeio.nesting_ok(parsed, MAX_JSON_DEPTH):
        raise DataError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels: refused")
    return parsed


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_entities(data, where: Path) -> None:
    for i, message in enumerate(data.training_examples):
        for entity in message.get("entities") or []:
            for key in ("start", "end"):
                value = entity.get(key) if isinstance(entity, dict) else None
                if not isinstance(value, int) or isinstance(value, bool):
                    raise DataError(f"{where}: example {i} ({_short(message.text)}): entity "
                                    f"{_short(entity.get('entity') if isinstance(entity, dict) else entity)} "
                                    f"'{key}' must be a whole number, got {_short(value)}")


def check_regexes(data, where: Path) -> None:
    for i, feature in enumerate(data.regex_features or []):
        pattern = feature.get("pattern") if isinstance(feature, dict) else None
        name = feature.get("name") if isinstance(feature, dict) else None
        if not isinstance(pattern, str) or not isinstance(name, str):
            raise DataError(f"{where}: regex feature {i} needs a 'name' and a 'pattern' string")
        if len(pattern) > MAX_REGEX_LENGTH:
            raise DataError(f"{where}: regex feature {name!r}: pattern longer than {MAX_REGEX_LENGTH} characters")
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as err:
            raise DataError(f"{where}: regex feature {_short(name)} ({_short(pattern)}): invalid regular "
                            f"expression: {err}") from None
        problem = regexes.problem(pattern)
        if problem:
            raise DataError(f"{where}: regex feature {_short(name)} ({_short(pattern)}): {problem}")


def check_synonyms(data, where: Path) -> None:
    for synonym, value in (getattr(data, "entity_synonyms", None) or {}).items():
        for what, item in (("synonym", synonym), ("value", value)):
            if not isinstance(item, str) or not item:
                raise DataError(f"{where}: entity synonym {_short(synonym)} -> {_short(value)}: the {what} must be "
                                f"a non-empty string, got {_short(item)}")


def _lookup_file(name: str, elements: str, where: Path, root: Path) -> Path:
    candidates = [Path(elements)] if Path(elements).is_absolute() else [root / elements, Path.cwd() / elements]
    root_real = root.resolve()
    for candidate in candidates:
        real = candidate.resolve()
        if real != root_real and root_real not in real.parents:
            continue
        if real.exists():
            return real
    raise DataError(f"{where}: lookup table {_short(name)} names the file {_short(elements)}, which is not a "
                    f"file inside the data folder {root}: refused (only files inside the data folder are read)")


def inline_lookup_tables(data, where: Path, root: Path) -> None:
    """Replace every lookup table that names a file by the file's lines (see the module docstring)."""
    remote = _is_remote(where)
    for table in getattr(data, "lookup_tables", None) or []:
        name = table.get("name") if isinstance(table, dict) else None
        elements = table.get("elements") if isinstance(table, dict) else None
        if not isinstance(name, str) or not isinstance(elements, list | str):
            raise DataError(f"{where}: a lookup table needs a 'name' and 'elements' (a list, or a file name)")
        if isinstance(elements, list):
            if not all(isinstance(e, str) for e in elements):
                raise DataError(f"{where}: lookup table {_short(name)}: 'elements' must be strings")
            continue
        if remote:
            raise DataError(f"{where}: lookup table {_short(name)} names the file {_short(elements)}: data from "
                            "the platform may not name local files; list the elements instead")
        path = _lookup_file(name, elements, where, root)
        text = safeio.read_text(path, f"lookup table {name!r} file", kind="lookup", error=DataError)
        table["elements"] = [line.strip() for line in text.splitlines() if line.strip()]


def check_loaded(data, where: Path, root: Path | None = None) -> None:
    """Every check above on one loaded file; ``root``: the data folder (default: the file's folder)."""
    check_entities(data, where)
    check_regexes(data, where)
    check_synonyms(data, where)
    inline_lookup_tables(data, where, root or where.parent)
