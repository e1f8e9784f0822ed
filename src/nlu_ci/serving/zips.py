"""The model server's zip cache: one zip per model, built once, verified while it is written, never half-written.

A zip holds exactly the files the model's ``nlu_ci.json`` lists (plus ``nlu_ci.json``), at the archive root (the
layout rasa_nlu's model puller unpacks). Each file is hashed as it is copied into the archive: the bytes checked
against the recorded sha256 are the bytes served, so a file changed between a check and the zipping cannot slip
through. The zip is written to a temporary name in the cache folder, fsynced, then ``os.replace``d to its final
name: a reader sees a complete zip or none. A mismatch removes the temporary file and raises ``StoreError``.

Cache key: the model's ETag (``model_etag``), so a model that changes on disk gets a new zip.

The cache is trusted only when it is this server's: each folder is created with mode 0700, and a folder that
exists already is refused (``StoreError``) unless it is a real folder (not a symlink) owned by this user that
nobody else may write (another local user who creates ``$TMPDIR/nlu-ci-zips`` first could plant
``<etag>.zip``). A zip found in the cache is served only after it was checked against the model (the same
entries, each with its recorded sha256, ``nlu_ci.json`` byte for byte): at its first use by this process and
again whenever its size, mtime or inode change. One that does not match is removed (one warning line) and rebuilt.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import threading
import zipfile
from pathlib import Path
from typing import Any

from nlu_ci.errors import StoreError
from nlu_ci.registry.store import METADATA

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


class Damaged(StoreError):
    """A model file is missing or does not match its recorded sha256."""


def model_etag(name: str, meta: dict[str, Any]) -> str:
    """The model's fingerprint for HTTP: its name plus a digest of the sha256 of every file.

    Unique per model (a re-trained model has another name), the same for as long as the model's files are the
    same (metadata edits such as notes do not change it), and different whenever ACTIVE names another model, so
    a rollback to an older model is pulled like a promotion."""
    files = meta.get("files") if isinstance(meta, dict) else None
    digest = hashlib.sha256(json.dumps([name, files], sort_keys=True).encode()).hexdigest()[:24]
    return f'"{name}.{digest}"'


def file_stats(model_dir: Path, files: dict[str, str]) -> tuple:
    """A cheap signature of a model's files (size, mtime, inode): changes when a file is replaced or edited."""
    out = []
    for rel in sorted(files):
        try:
            st = os.stat(model_dir / rel)
            out.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append((rel, None, None, None))
    return tuple(out)


class ZipCache:
    """Zips of models under ``cache_dir/<project>/<model>.<digest>.zip``."""

    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir)
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()
        self._checked: dict[Path, tuple] = {}  # zip -> its signature when this process built or verified it
        own_dir(self.dir)
        for tmp in self.dir.glob("*/*.tmp"):  # a server killed while zipping: only we write here
            with contextlib.suppress(OSError):
                tmp.unlink()

    def path_for(self, project: str, name: str, etag: str) -> Path:
        return self.dir / project / (etag.strip('"') + ".zip")

    def _lock(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())

    def get(self, project: str, model_dir: Path, meta: dict[str, Any], etag: str) -> tuple[Path, bool]:
        """The zip of the model (built if missing); ``(path, built_now)``. StoreError if a file does not match."""
        final = self.path_for(project, model_dir.name, etag)
        if final.is_file() and self._checked.get(final) == _signature(final):
            return final, False
        with self._lock(final):
            own_dir(final.parent)
            if final.is_file():  # cached (by another request meanwhile, or found on disk): check it first
                problem = _zip_problem(final, model_dir, meta)
                if problem is None:
                    self._checked[final] = _signature(final)
                    return final, False
                log.warning("cached zip %s does not match model %s (%s): removed, rebuilt", final, model_dir.name,
                            problem)
                with contextlib.suppress(OSError):
                    final.unlink()
            self._build(model_dir, meta, final)
            self._checked[final] = _signature(final)
        self._prune(project, keep=final.name)
        return final, True

    def _build(self, model_dir: Path, meta: dict[str, Any], final: Path) -> None:
        files = meta.get("files") or {}
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                for rel in sorted(files):
                    _add_checked(zf, model_dir, str(rel), files[rel])
                zf.write(model_dir / METADATA, METADATA)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"{model_dir}: cannot zip the model: {err.strerror or err}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        log.info("zipped %s (%d files, %d bytes) into the cache", model_dir.name, len(files), final.stat().st_size)

    def _prune(self, project: str, keep: str) -> None:
        """Keep the newest zips of a project (the active model's and the one before it); remove the rest.
        A zip being streamed stays readable after its unlink (the open file keeps it)."""
        zips = sorted((self.dir / project).glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [z for z in zips if z.name != keep][1:]:
            with contextlib.suppress(OSError):
                old.unlink()


def _add_checked(zf: zipfile.ZipFile, model_dir: Path, rel: str, expected: str) -> None:
    if ".." in Path(rel).parts or Path(rel).is_absolute():
        raise Damaged(f"{model_dir / METADATA}: file entry {rel[:80]!r} points outside the model")
    path = model_dir / rel
    if not path.is_file():
        raise Damaged(f"{path}: file missing")
    info = zipfile.ZipInfo.from_file(path, rel, strict_timestamps=False)
    info.compress_type = zipfile.ZIP_DEFLATED
    digest = hashlib.sha256()
    with open(path, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
        for block in iter(lambda: src.read(_CHUNK), b""):
            digest.update(block)
            dst.write(block)
    if digest.hexdigest() != expected:
        raise Damaged(f"{path}: checksum mismatch")


def own_dir(path: Path) -> None:
    """Create ``path`` (mode 0700), or accept it only if it is this user's and nobody else may write it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(path)
    except OSError as err:
        raise StoreError(f"zip cache {path}: cannot create: {err.strerror or err}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"zip cache {path} is not a folder (a symlink?): refused; remove it or use another --zip-cache")
    if st.st_uid != os.geteuid():
        raise StoreError(f"zip cache {path} belongs to uid {st.st_uid}, not to this server (uid {os.geteuid()}): "
                         "refused (anyone could have planted zips there); remove it or use another --zip-cache")
    if st.st_mode & 0o022:
        raise StoreError(f"zip cache {path} has mode {stat.S_IMODE(st.st_mode):o}: others may write it; refused "
                         "(chmod 700 it, remove it or use another --zip-cache)")


def _signature(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns


def _zip_problem(path: Path, model_dir: Path, meta: dict[str, Any]) -> str | None:
    """None when the zip holds exactly the model's files (each with its recorded sha256) and its nlu_ci.json."""
    files = {str(k): v for k, v in (meta.get("files") or {}).items()}
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if len(names) != len(set(names)) or set(names) != set(files) | {METADATA}:
                return "its entries are not the model's files"
            for rel, expected in files.items():
                digest = hashlib.sha256()
                with zf.open(rel) as fh:
                    for block in iter(lambda fh=fh: fh.read(_CHUNK), b""):
                        digest.update(block)
                if digest.hexdigest() != expected:
                    return f"{rel}: checksum mismatch"
            if zf.read(METADATA) != (model_dir / METADATA).read_bytes():
                return f"{METADATA} differs"
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as err:
        return f"unreadable: {err}"
    return None
