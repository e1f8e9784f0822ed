"""User messages from rasa_nlu 0.15's query log (``python -m rasa_nlu.server --response_log DIR``, and
``nlu-ci serve --query-log DIR``, which writes the same files).

rasa_nlu's ``DataRouter._create_query_logger`` opens ``DIR/rasa_nlu_log-<YYYYmmdd-HHMMSS>-<pid>.log`` and
logs each parse with Twisted's ``jsonFileLogObserver``: one JSON object per line, ``user_input`` (the parse
result: ``text``, ``intent``, ``intent_ranking``, ``entities``, ``project``, ``model``), ``project``,
``model``, ``log_time`` (Unix seconds) and Twisted's own ``log_*`` keys.

Bounded: files older than the age window are not opened, files are read newest first, a line over
``MAX_RECORD_BYTES`` is skipped without being held in memory, at most ``MAX_FOLDER_BYTES`` are read per
folder; a line that is not a JSON record is skipped with a warning naming ``file:line``.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from nlu_ci.messages import MAX_RECORD_BYTES, Batch, Message

PATTERN = "rasa_nlu_log-*.log"
MAX_FOLDER_BYTES = 512 << 20
MAX_WARNINGS = 10  # bad lines named one by one; the rest counted


class Unavailable(Exception):
    """The folder cannot be read: one line naming it."""


def _files(folder: Path, since: float) -> list[Path]:
    if not folder.is_dir():
        raise Unavailable(f"{folder}: no such folder (a query-log folder or an SQLAlchemy URL)")
    try:
        found = []
        for path in folder.glob(PATTERN):
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mtime >= since:
                found.append((st.st_mtime, path.name, path))
    except OSError as err:
        raise Unavailable(f"{folder}: cannot list ({err.strerror or err})") from None
    return [p for _, _, p in sorted(found, reverse=True)]


def message_of(record) -> Message | None:
    if not isinstance(record, dict) or not isinstance(record.get("user_input"), dict):
        raise ValueError("no 'user_input' object")
    parse = record["user_input"]
    text = parse.get("text")
    if not isinstance(text, str):
        return None
    intent = parse.get("intent") if isinstance(parse.get("intent"), dict) else {}
    when, confidence = record.get("log_time"), intent.get("confidence")
    return Message(text, float(when) if isinstance(when, int | float) else None,
                   intent.get("name") if isinstance(intent.get("name"), str) else None,
                   float(confidence) if isinstance(confidence, int | float) else None)


def _lines(path: Path):
    """(line number, bytes or None when over the cap) of a file, never holding more than the cap."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        n = 0
        while True:
            line = fh.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            n += 1
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(MAX_RECORD_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield n, None, len(line)
                continue
            yield n, line, len(line)


def read(folder: str | Path, batch: Batch, *, limit: int, since: float) -> None:
    """Append the newest ``limit`` messages since ``since`` from the folder's log files to ``batch``."""
    folder = Path(folder)
    found: list[Message] = []
    total = bad = 0
    for path in _files(folder, since):
        if total >= MAX_FOLDER_BYTES:
            batch.skip("files beyond the 512 MiB read per folder")
            continue
        try:
            for n, line, size in _lines(path):
                total += size
                if line is None:
                    batch.skip("over 1 MiB")
                    continue
                if not line.strip():
                    continue
                try:
                    message = message_of(json.loads(line))
                except (ValueError, UnicodeDecodeError) as err:
                    bad += 1
                    if bad <= MAX_WARNINGS:
                        why = "not JSON" if isinstance(err, json.JSONDecodeError | UnicodeDecodeError) else str(err)
                        batch.warnings.append(f"{path}:{n}: query-log line skipped ({why})")
                    continue
                if message is None:
                    batch.skip("no text")
                elif message.timestamp is not None and message.timestamp < since:
                    batch.skip("older than the age window")
                else:
                    found.append(message)
        except OSError as err:
            batch.warnings.append(f"{path}: cannot read ({err.strerror or err})")
    if bad > MAX_WARNINGS:
        batch.warnings.append(f"{folder}: {bad - MAX_WARNINGS} more query-log lines skipped (not JSON records)")
    found.sort(key=lambda m: m.timestamp or 0.0, reverse=True)
    batch.skip("beyond the limit", max(0, len(found) - limit))
    batch.messages.extend(found[:limit])
