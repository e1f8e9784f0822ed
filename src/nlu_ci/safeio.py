"""Bounded reads of regular files: the one way nlu-ci reads a file a user, a store or a Secret names.

A FIFO, a device (``/dev/zero``), a socket or a folder is refused before a byte is read (the file is opened
with ``O_NONBLOCK``, so even opening a FIFO cannot hang), and no more than ``limit`` bytes are ever read:
a file over its cap is refused with one line naming it. The caps (bytes) are documented in
docs/reliability.md; ``NLU_CI_MAX_DATA_BYTES`` raises the one for training data.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from nlu_ci.errors import ConfigError, NluCiError

KIB, MIB = 1 << 10, 1 << 20
LIMITS = {
    "data": 512 * MIB,        # training/test data file (NLU_CI_MAX_DATA_BYTES)
    "config": 1 * MIB,        # nlu_config.yml, policy.yml, must_pass.yml
    "secret": 64 * KIB,       # a *_FILE secret (token, password, webhook URL)
    "pointer": 4 * KIB,       # ACTIVE, PREVIOUS
    "metadata": 64 * MIB,     # a model's nlu_ci.json
    "lookup": 64 * MIB,       # a lookup table file named by the training data
    "history": 256 * MIB,     # history.jsonl (read for the carried metrics timestamps)
}


def limit(kind: str) -> int:
    if kind == "data":
        raw = os.environ.get("NLU_CI_MAX_DATA_BYTES", "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"NLU_CI_MAX_DATA_BYTES: {raw[:40]!r} is not a whole number of bytes") from None
            if value > 0:
                return value
    return LIMITS[kind]


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path | str, what: str, *, kind: str, error: type[NluCiError] = ConfigError,
               where: str | None = None, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``limit(kind)`` bytes; ``error`` (one line) otherwise."""
    where = where or str(path)
    cap = limit(kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{where}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{where}: {what} is a folder, not a file") from None
    except OSError as err:
        raise error(f"{where}: cannot read {what}: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what_it_is = _kind_of(st.st_mode)
            if what_it_is == "a folder":
                raise error(f"{where}: {what} is a folder, not a file")
            raise error(f"{where}: {what} is {what_it_is}, not a regular file: refused")
        if st.st_size > cap:
            raise error(f"{where}: {what} is {st.st_size} bytes, over the limit of {cap} bytes")
        chunks, total = [], 0
        while True:  # read at most cap + 1 bytes: a file that grows while we read is still bounded
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise error(f"{where}: {what} is over the limit of {cap} bytes")
        return b"".join(chunks)
    except OSError as err:
        raise error(f"{where}: cannot read {what}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def read_text(path: Path | str, what: str, *, kind: str, error: type[NluCiError] = ConfigError,
              where: str | None = None, follow_symlinks: bool = True) -> str:
    """``read_bytes`` decoded as UTF-8 (a BOM is dropped); invalid UTF-8 is ``error`` naming the byte."""
    where = where or str(path)
    raw = read_bytes(path, what, kind=kind, error=error, where=where, follow_symlinks=follow_symlinks)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{where}: {what} is not UTF-8 text ({err.reason} at byte {err.start})") from None


def nesting_ok(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests at most ``limit`` levels (iteratively: a deep value cannot exhaust the stack).
    Used for data files and for request bodies of ``nlu-ci serve``."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True
