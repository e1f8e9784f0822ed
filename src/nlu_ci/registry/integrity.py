"""Verify a model folder before anything loads it: its files must match the sha256 list of ``nlu_ci.json``.

rasa_nlu loads a model by unpickling some of its files (and crfsuite reads ``.crfsuite`` files in C): a
replaced pickle runs code on load, a damaged ``.crfsuite`` file can crash the process. So every loader
asks first: ``verify_model_dir(path)`` lists the problems ([] when intact), ``check_model_folder(path)``
raises (``ConfigError``: not a model folder at all, exit 2; ``StoreError``: damaged, exit 1), and
``ModelStore.open_verified(name)`` does the same for a model in the store.

A problem is a file listed but missing or different, a file present but not listed (nothing may be added
to a model after it was stored), a listed path outside the folder, and metadata that is not a JSON object
with a ``files`` mapping of relative paths to sha256 digests.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from nlu_ci import safeio
from nlu_ci.errors import ConfigError, StoreError

METADATA = "nlu_ci.json"
RASA_METADATA = "metadata.json"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(model_dir: Path) -> dict[str, str]:
    """sha256 of every file of a model (paths relative to the model dir), except our metadata."""
    out = {}
    for p in sorted(model_dir.rglob("*")):
        if p.is_file() and p.name != METADATA:
            out[p.relative_to(model_dir).as_posix()] = sha256_file(p)
    return out


def read_metadata(model_dir: Path) -> dict[str, Any]:
    """A model's ``nlu_ci.json`` as a dict; StoreError (one line) when missing, unreadable or not an object."""
    path = Path(model_dir) / METADATA
    if not path.exists() and not path.is_symlink():
        raise StoreError(f"{path}: model metadata missing")
    text = safeio.read_text(path, "model metadata", kind="metadata", error=StoreError)
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise StoreError(f"{path}: unreadable model metadata: {type(err).__name__}: {err}") from None
    if not isinstance(meta, dict):
        raise StoreError(f"{path}: unreadable model metadata: a JSON object expected, found {type(meta).__name__}")
    return meta


def _listed(meta: dict[str, Any], where: Path) -> tuple[dict[str, str], list[str]]:
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        return {}, [f"{where}: lists no files"]
    good, problems = {}, []
    for rel, digest in files.items():
        pure = PurePosixPath(str(rel))
        if pure.is_absolute() or ".." in pure.parts or not str(rel) or not isinstance(digest, str) \
                or not _DIGEST.match(digest):
            problems.append(f"{where}: invalid file entry {str(rel)[:80]!r}")
        else:
            good[str(rel)] = digest
    return good, problems


def verify_model_dir(model_dir: Path | str, *, require_metadata: bool = True) -> list[str]:
    """Problems with a model folder ([] if intact). Without ``nlu_ci.json``: a problem, or (with
    ``require_metadata=False``, a folder made by plain rasa_nlu) nothing to check against."""
    model = Path(model_dir)
    if not model.is_dir():
        return [f"{model}: model folder missing"]
    if not require_metadata and not (model / METADATA).exists() and not (model / METADATA).is_symlink():
        return []
    try:
        meta = read_metadata(model)
    except StoreError as err:
        return [str(err)]
    expected, problems = _listed(meta, model / METADATA)
    for rel, digest in sorted(expected.items()):
        p = model / rel
        if p.is_symlink() or not p.is_file():
            problems.append(f"{p}: file missing" if not p.exists() else f"{p}: not a regular file")
        elif sha256_file(p) != digest:
            problems.append(f"{p}: checksum mismatch")
    for p in sorted(model.rglob("*")):
        rel = p.relative_to(model).as_posix()
        leftover = p.name.startswith(f".{METADATA}.") and p.name.endswith(".tmp")  # a crash during a rewrite
        if p.name != METADATA and not leftover and not p.is_dir() and rel not in expected and expected:
            problems.append(f"{p}: not listed in {METADATA} (added after the model was stored)")
    return problems


def check_model_folder(path: Path | str, command: str = "evaluate") -> Path:
    """A folder that is safe to load: ConfigError (exit 2) when it is not a rasa_nlu model folder, StoreError
    (exit 1) when its ``nlu_ci.json`` exists and any file does not match it."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{command}: {path} is not a folder")
    if not (path / RASA_METADATA).is_file():
        raise ConfigError(f"{command}: {path} is not a rasa_nlu model folder ({RASA_METADATA} missing)")
    problems = verify_model_dir(path, require_metadata=False)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise StoreError(f"{command}: model {path} is damaged, not loading it: {problems[0]}{more}")
    return path


def tighten_tree(root: Path, dir_mode: int, file_mode: int) -> None:
    """Give a folder and everything in it explicit modes (never following a symlink)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, dir_mode)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, file_mode)
