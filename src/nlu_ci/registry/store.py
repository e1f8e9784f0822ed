"""The local model store on the PersistentVolumeClaim: layout, lock, atomic promotion, history, retention.

Layout (see docs/architecture.md)::

    <root>/<project>/model_YYYYMMDD-HHMMSS/   complete rasa_nlu model + nlu_ci.json (metadata, sha256 per file)
    <root>/<project>/.incoming/<name>.<pid>/   training writes here; renamed into place only when complete
    <root>/<project>/ACTIVE                    name of the active model (os.replace of a fsynced temp file)
    <root>/<project>/PREVIOUS                  name of the model that was active before it
    <root>/<project>/history.jsonl             one JSON line per run, promotion, rollback
    <root>/<project>/reports/<stamp>.json      every run's report; last_report.json is the newest
    <root>/<project>/.lock                     fcntl.flock: one run at a time (the kernel frees it if we die)

Crash consistency: a model directory appears under its final name only by ``os.rename`` of a
complete, fsynced staging directory; ACTIVE only ever names such a directory. A kill at any moment
leaves either the old or the new pointer, and at worst an orphan in ``.incoming`` (removed by the
next run, which holds the lock).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nlu_ci import safeio
from nlu_ci.errors import ConfigError, LockedError, NluCiError, StoreError
from nlu_ci.registry.integrity import (  # noqa: F401  (re-exported: the store's checksum helpers)
    METADATA,
    checksums,
    read_metadata,
    sha256_file,
    tighten_tree,
    verify_model_dir,
)

log = logging.getLogger(__name__)

ACTIVE = "ACTIVE"
PREVIOUS = "PREVIOUS"
HISTORY = "history.jsonl"
INCOMING = ".incoming"
LOCK = ".lock"
MODEL_PREFIX = "model_"
# explicit modes, whatever the umask: the store holds user utterances (training data, predictions)
DIR_MODE = 0o750
FILE_MODE = 0o640
UMASK = 0o027


def _oserror(err: OSError) -> str:
    return err.strerror or str(err)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover (or a planted symlink) is never written through
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"{path}: cannot write: {_oserror(err)}") from None
    fsync_dir(path.parent)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def restrict_umask() -> None:
    """From now on this process creates nothing group-writable or world-readable (umask 027): what rasa_nlu
    writes into a model folder too. Called by the CLI, not on import or by the store, so a program that uses
    the library keeps its own umask."""
    os.umask(os.umask(UMASK) | UMASK)


class ModelStore:
    """One project's models on a filesystem (the PVC)."""

    def __init__(self, root: Path | str, project: str = "default"):
        self.root = Path(root)
        self.project = project
        self.dir = self.root / project
        self._lock_fd: int | None = None
        self.last_committed: str | None = None  # the model this run stored: retention never prunes it

    # ------------------------------------------------------------ set-up and lock
    def ensure(self) -> None:
        """Create the project folder and check that we can write there (ConfigError if not); the store's folders
        get ``DIR_MODE`` explicitly (the CLI also runs with umask 027: ``restrict_umask``)."""
        try:
            (self.dir / INCOMING).mkdir(parents=True, exist_ok=True)
            (self.dir / "reports").mkdir(exist_ok=True)
        except OSError as err:
            raise ConfigError(f"models dir {self.dir}: cannot create: {_oserror(err)}") from None
        for folder in (self.dir, self.dir / INCOMING, self.dir / "reports"):
            try:
                os.chmod(folder, DIR_MODE)
            except OSError as err:  # read-only or not ours: the write probe below says what that means
                log.debug("cannot set the mode of %s: %s", folder, _oserror(err))
        probe = self.dir / INCOMING / f".probe.{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise ConfigError(f"models dir {self.dir} is not writable: {_oserror(err)}") from None

    def acquire_lock(self) -> None:
        """Take the store's exclusive lock, or raise LockedError naming the holder."""
        path = self.dir / LOCK
        try:  # never follow a symlink: a planted .lock -> some file would truncate that file
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise StoreError(f"{path}: the lock file is a symbolic link: refusing to follow it "
                                 "(remove it)") from None
            raise StoreError(f"{path}: cannot open the lock file: {_oserror(err)}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StoreError(f"{path}: the lock file is not a regular file: refusing to use it (remove it)")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(f"model store {self.dir} is locked by another run ({holder or 'unknown holder'})") from None
            raise StoreError(f"{path}: cannot lock: {_oserror(err)}") from None
        # the kernel drops a flock when its process dies, so a killed run never leaves a stale lock
        info = f"pid {os.getpid()} on {socket.gethostname()} since {iso(now_utc())}"
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        self._lock_fd = fd

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[ModelStore]:
        self.acquire_lock()
        try:
            yield self
        finally:
            self.release_lock()

    # ------------------------------------------------------------ models
    def new_model_name(self, when: dt.datetime | None = None) -> str:
        base = MODEL_PREFIX + (when or now_utc()).strftime("%Y%m%d-%H%M%S")
        name, n = base, 1
        while (self.dir / name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def staging_dir(self, name: str) -> Path:
        """An empty path in .incoming for training to write ``name`` into (must not exist yet)."""
        return self.dir / INCOMING / f"{name}.{os.getpid()}" / name

    def clean_incoming(self, quiet: bool = False) -> list[str]:
        """Remove leftovers of runs that died (we hold the lock, so nobody else writes there)."""
        removed = []
        incoming = self.dir / INCOMING
        for p in sorted(incoming.iterdir()) if incoming.is_dir() else []:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p.name)
        if removed and not quiet:
            log.warning("removed %d unfinished item(s) left in %s by an interrupted run", len(removed), incoming)
        return removed

    def commit(self, staged: Path, metadata: dict[str, Any]) -> Path:
        """Write metadata (with checksums) into a complete staged model and move it into place."""
        name = staged.name
        final = self.dir / name
        if final.exists():
            raise StoreError(f"{final}: a model with this name already exists")
        try:
            meta = dict(metadata, model=name, files=checksums(staged))
            with open(staged / METADATA, "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2, sort_keys=True, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            tighten_tree(staged, DIR_MODE, FILE_MODE)
            for p in staged.rglob("*"):
                if p.is_file():
                    with open(p, "rb") as fh:
                        os.fsync(fh.fileno())
            fsync_dir(staged)
            os.rename(staged, final)
            self.last_committed = name
        except OSError as err:
            raise StoreError(f"{final}: cannot store the model: {_oserror(err)}") from None
        fsync_dir(self.dir)
        with contextlib.suppress(OSError):
            staged.parent.rmdir()
        return final

    def discard(self, staged: Path | None) -> None:
        if staged is not None and INCOMING in staged.parts:
            shutil.rmtree(staged.parent if staged.parent.name != INCOMING else staged, ignore_errors=True)

    def path(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise StoreError(f"{self.dir}: invalid model name {name!r}")
        return self.dir / name

    def models(self) -> list[str]:
        """Names of complete models, oldest first."""
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir()
                      if p.is_dir() and p.name.startswith(MODEL_PREFIX) and (p / METADATA).is_file())

    def metadata(self, name: str) -> dict[str, Any]:
        """A model's nlu_ci.json (a JSON object; StoreError when missing, unreadable or anything else)."""
        return read_metadata(self.path(name))

    def update_metadata(self, name: str, **values: Any) -> None:
        meta = self.metadata(name)
        meta.update(values)
        atomic_write_text(self.path(name) / METADATA, json.dumps(meta, indent=2, sort_keys=True, default=str))

    def verify(self, name: str) -> list[str]:
        """Problems with a stored model (missing folder/metadata/files, checksum mismatch, added files,
        metadata of the wrong shape); [] if intact. See ``registry.integrity``."""
        try:
            return verify_model_dir(self.path(name))
        except StoreError as err:
            return [str(err)]

    def open_verified(self, name: str) -> Path:
        """The folder of stored model ``name``, checked against its checksums: the only way to get a path to
        load a stored model from (a replaced pickle would run code on load). StoreError when damaged."""
        problems = self.verify(name)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise StoreError(f"model {name} is damaged, not loading it: {problems[0]}{more}")
        return self.path(name)

    # ------------------------------------------------------------ pointers
    def _read_pointer(self, file: str) -> str | None:
        """The model a pointer file names. A pointer that cannot be a model name (not UTF-8, not a regular
        file, over 4 KiB, several lines) is damaged: a warning, and treated as no model (the next promotion
        replaces it), so that no run or status ever fails on it."""
        path = self.dir / file
        if not path.exists() and not path.is_symlink():
            return None
        try:
            name = safeio.read_text(path, f"{file} pointer", kind="pointer", error=StoreError).strip()
        except NluCiError as err:
            log.warning("%s; treating it as naming no model", err)
            return None
        if "\n" in name or "\x00" in name:
            log.warning("%s: damaged pointer (%d lines); treating it as naming no model", path, len(name.splitlines()))
            return None
        return name or None

    def active_name(self) -> str | None:
        return self._read_pointer(ACTIVE)

    def previous_name(self) -> str | None:
        return self._read_pointer(PREVIOUS)

    def activate(self, name: str) -> str | None:
        """Make ``name`` the active model (atomic); returns the model that was active before."""
        if not (self.path(name) / METADATA).is_file():
            raise StoreError(f"{self.dir / name}: not a complete model, refusing to activate it")
        before = self.active_name()
        if before and before != name:
            damaged = self.verify(before)
            if damaged:  # keep PREVIOUS on the last good model: a rollback to a damaged one could never work
                log.warning("not recording %s as the previous model: it is damaged (%s)", before, damaged[0])
            else:
                atomic_write_text(self.dir / PREVIOUS, before + "\n")
        atomic_write_text(self.dir / ACTIVE, name + "\n")
        return before

    # ------------------------------------------------------------ history and reports
    def append_history(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, sort_keys=True, default=str) + "\n"
        path = self.dir / HISTORY
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         FILE_MODE)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise StoreError(f"{path}: not a regular file: refusing to append to it")
                os.fchmod(fd, FILE_MODE)
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # a crash tore the last line: never glue ours onto it
                os.write(fd, line.encode("utf-8"))  # one write of a whole line: O_APPEND keeps it whole
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise StoreError(f"{path}: cannot append: {_oserror(err)}") from None

    def history(self, limit: int | None = None) -> list[dict[str, Any]]:
        path = self.dir / HISTORY
        if not path.is_file():
            return []
        out = []
        with open(path, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    entry = None
                if isinstance(entry, dict):
                    out.append(entry)
                else:  # torn, garbage, or JSON that is not an object ([], null, 5): skipped, never fatal
                    log.warning("%s:%d: skipping an unreadable history line", path, n)
        return out[-limit:] if limit else out

    def write_report(self, report: dict[str, Any], stamp: str) -> Path:
        text = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
        reports = self.dir / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(reports, DIR_MODE)
        path = reports / f"{stamp}.json"
        atomic_write_text(path, text)
        atomic_write_text(self.dir / "last_report.json", text)
        return path

    def write_predictions(self, stamp: str, rows: list[dict[str, Any]]) -> Path:
        """A run's per-utterance predictions as ``reports/<stamp>.predictions.jsonl`` (one JSON line each)."""
        path = self.dir / "reports" / f"{stamp}.predictions.jsonl"
        try:
            with open(path, "w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        except OSError as err:
            raise StoreError(f"cannot write predictions {path}: {_oserror(err)}") from None
        return path

    def last_report(self) -> dict[str, Any] | None:
        path = self.dir / "last_report.json"
        try:
            report = json.loads(safeio.read_text(path, "last report", kind="metadata", error=StoreError))
        except (NluCiError, ValueError, RecursionError):
            return None
        return report if isinstance(report, dict) else None

    # ------------------------------------------------------------ retention
    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` models by recorded creation (``registry.retention``); never the
        active or the previous one, nor the one this store object committed last (this run's candidate)."""
        from nlu_ci.registry import retention

        protected = {self.active_name(), self.previous_name(), self.last_committed}
        doomed = retention.prune_models(self.dir, self.models(), keep, protected, self.dir / INCOMING)
        if doomed:
            log.info("retention: removed %d old model(s), kept %d", len(doomed), len(self.models()))
        return doomed
