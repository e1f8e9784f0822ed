"""Which files of a data path are NLU training data.

A file is taken as given. In a folder (a Rasa project, say), every ``.json``, ``.md``/``.markdown`` and
``.yml``/``.yaml`` file is read unless it is not NLU data, which is skipped with a note: YAML without an
``nlu:`` section (stories, rules, domain, config, endpoints), Markdown without an ``## intent:`` (synonym,
regex, lookup) section (stories.md), JSON without ``rasa_nlu_data``, anything under ``tests/`` (Rasa's
test stories and held-out data are not training data) and hidden files.
"""
from __future__ import annotations

import re
from pathlib import Path

from nlu_ci.errors import DataError

YAML_SUFFIXES = (".yml", ".yaml")
MARKDOWN_SUFFIXES = (".md", ".markdown")
SUFFIXES = (".json",) + MARKDOWN_SUFFIXES + YAML_SUFFIXES
SKIPPED_FOLDERS = ("tests",)
NLU_YAML = re.compile(r"(?m)^nlu\s*:")
MARKDOWN_SECTION = re.compile(r"##\s*(intent|synonym|regex|lookup):")
YAML_KINDS = (("stories", "stories"), ("rules", "rules"), ("intents", "domain"), ("responses", "domain"),
              ("pipeline", "config"), ("policies", "config"), ("action_endpoint", "endpoints"))


def is_yaml(path: Path) -> bool:
    return path.suffix.lower() in YAML_SUFFIXES


def _kind_of(path: Path) -> str | None:
    """None when ``path`` looks like NLU data, else what it is ("stories", "domain", ...)."""
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # let the reader report it
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        if NLU_YAML.search(raw):
            return None
        kinds = [kind for key, kind in YAML_KINDS if re.search(rf"(?m)^{key}\s*:", raw)]
        return kinds[0] if kinds else "not NLU data"
    if suffix in MARKDOWN_SUFFIXES:
        return None if MARKDOWN_SECTION.search(raw) else "stories" if re.search(r"(?m)^\s*\*\s", raw) else "not NLU data"
    return None if "rasa_nlu_data" in raw else "not Rasa NLU JSON"


def data_files(path: Path) -> tuple[list[Path], list[str]]:
    """(files to read, notes on what was skipped)."""
    if not path.is_dir():
        if not path.exists():
            raise DataError(f"{path}: training data file not found")
        return [path], []
    files, notes = [], []
    skipped_folders = set()
    for p in sorted(path.rglob("*")):
        parts = p.relative_to(path).parts
        if not p.is_file() or p.suffix.lower() not in SUFFIXES or any(part.startswith(".") for part in parts):
            continue
        folder = next((part for part in parts[:-1] if part in SKIPPED_FOLDERS), None)
        if folder:
            skipped_folders.add(folder)
            continue
        kind = _kind_of(p)
        if kind:
            notes.append(f"{p}: skipped ({kind}, not NLU training data)")
        else:
            files.append(p)
    notes += [f"{path / f}/: skipped (test stories and test data are not training data)" for f in sorted(skipped_folders)]
    if not files:
        shown = f"; skipped: {'; '.join(notes[:3])}" if notes else ""
        raise DataError(f"{path}: folder has no training data files ({', '.join(SUFFIXES)}){shown}")
    return files, notes
