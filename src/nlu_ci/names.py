"""The one rule for names a user gives nlu-ci: project names and file paths (a leaf module, no imports of nlu-ci).

A project name is a folder of the store, a Pushgateway group label and a URL path segment
(``serve-models``' ``/models/<project>``): ASCII letters, digits, ``_``, ``.`` and ``-``, starting with a
letter or digit, at most 128 characters. ``" "``, ``"cafe\\u202e"`` (a bidirectional override), ``a\\..\\b``,
``../x`` or a trailing newline are not names. ``run``, ``status``, ``report``, ``serve`` (settings) and
``serve-models`` (``serving.active_model``) all use ``PROJECT_NAME``, so a project that trains can be served.

A path a user names (``--data``, ``--report``, a model folder, ...) must fit the kernel's limits: each
component at most ``NAME_MAX`` (255) bytes, the whole at most ``PATH_MAX`` (4096) bytes; otherwise the
first ``open`` or ``stat`` fails with ``ENAMETOOLONG`` somewhere deep in a library.
"""
from __future__ import annotations

import os
import re

PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")  # .match() anchors at the start, \Z at the end
NAME_MAX = 255
PATH_MAX = 4096


def project_problem(name: object) -> str | None:
    """Why ``name`` is not a project name (one line), or None when it is one."""
    if not isinstance(name, str) or not PROJECT_NAME.match(name):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:80] + "..."
        return (f"{shown} is not a valid project name (ASCII letters, digits, '_', '.', '-'; starting with a "
                "letter or digit; at most 128 characters)")
    return None


def path_problem(path: os.PathLike | str) -> str | None:
    """Why ``path`` cannot be opened whatever the disk holds (too long, a NUL byte), or None."""
    raw = os.fsencode(path)
    if b"\x00" in raw:
        return "contains a NUL byte"
    if len(raw) >= PATH_MAX:
        return f"path of {len(raw)} bytes, over the limit of {PATH_MAX - 1}"
    longest = max((len(part) for part in raw.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"a path component of {longest} bytes, over the limit of {NAME_MAX}"
    return None


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def argument_problem(arguments: dict) -> str | None:
    """The first command-line argument (a model name or folder, a file) that no file system can hold, as one
    line naming it; None when every one fits. ``arguments``: ``vars()`` of the parsed namespace."""
    for key, value in arguments.items():
        if key.startswith("_") or not isinstance(value, str | os.PathLike):
            continue
        problem = path_problem(value)
        if problem:
            return f"{key.replace('_', '-')}: {shorten(repr(str(value)))}: {problem}"
    return None
