"""``nlu-ci serve --query-log DIR``: rasa_nlu 0.15's query log (its ``--response_log``), bounded and private.

The records are rasa_nlu's own, written by the same code rasa_nlu uses (``twisted.logger``'s
``jsonFileLogObserver`` with ``recordSeparator=''``, namespace ``query-logger``): one JSON object per line and parse,
``{"user_input": <the /parse answer: text, intent, intent_ranking, entities, project, model>, "project": ...,
"model": ..., "log_namespace": "query-logger", "log_time": <unix seconds>, ...}``, in files named as rasa_nlu names
them (``rasa_nlu_log-<YYYYmmdd-HHMMSS>-<pid>.log``; ``-<n>`` is added when a second file starts in the same
second). What rasa_nlu does not do, done here:

* bounded: a file is closed at a quarter of ``max_bytes`` (shared by the ``writers``) and a new one started; the oldest files are removed while
  the folder's ``rasa_nlu_log-*.log`` files add up to more than ``max_bytes``, and any older than ``max_age``
  seconds (checked at start, at each new file and once a minute);
* private: files are created with mode 0640 (the folder 0750); with ``mask`` the text and the entity values are
  masked by ``nlu_ci.masking`` (the one rule: ``<email>``, ``<number>``) before anything is written (entity
  offsets then refer to the original text);
* a write that fails (disk full) drops that record with one warning, and the server keeps answering;
* several processes (the lean server's workers, as rasa_nlu's DataRouter in each process): each writes its own
  files (the pid is in the name), the bound is the folder's, and pruning never removes the file another live
  process is writing (the newest file of each running pid, unless it is past the age limit).
"""
from __future__ import annotations

import contextlib
import datetime
import io
import logging
import os
import re
import threading
import time
from pathlib import Path

from nlu_ci import masking

log = logging.getLogger(__name__)

PATTERN = "rasa_nlu_log-*.log"
PRUNE_EVERY = 60.0
NAME = re.compile(r"rasa_nlu_log-\d{8}-\d{6}-(\d+)(?:-\d+)?\.log")
mask_text = masking.mask  # the one rule (nlu_ci/masking.py), also applied where messages are read


def masked(response: dict) -> dict:
    out = dict(response)
    if isinstance(out.get("text"), str):
        out["text"] = mask_text(out["text"])
    if isinstance(out.get("entities"), list):
        out["entities"] = [{**e, "value": mask_text(e["value"])} if isinstance(e, dict) and isinstance(e.get("value"),
                           str) else e for e in out["entities"]]
    return out


class QueryLog:
    def __init__(self, folder: Path, max_bytes: int, max_age: float, mask: bool = True, project: str = "default",
                 writers: int = 1):
        self.dir, self.max_bytes, self.max_age, self.mask, self.project = Path(folder), max_bytes, max_age, mask, project
        self.rotate_at = max_bytes // (4 * max(1, writers))  # the files being written add up to a quarter
        self._lock = threading.Lock()
        self._fh: io.TextIOBase | None = None
        self._path: Path | None = None
        self._logger = None
        self._pruned = 0.0
        ensure_dir(self.dir)
        with self._lock:
            self._open()

    @property
    def path(self) -> Path | None:
        return self._path if self._fh is not None else None

    def _open(self) -> None:
        from twisted.logger import Logger, jsonFileLogObserver

        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base, n = f"rasa_nlu_log-{stamp}-{os.getpid()}", 0
        while True:
            path = self.dir / (f"{base}.log" if n == 0 else f"{base}-{n}.log")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
                break
            except FileExistsError:
                n += 1
        os.fchmod(fd, 0o640)  # whatever the umask
        self._path = path
        self._fh = open(fd, "a", encoding="utf8")  # noqa: SIM115 (closed at the next rotation or close())
        self._logger = Logger(observer=jsonFileLogObserver(self._fh, recordSeparator=""), namespace="query-logger")
        self._prune()

    def _prune(self) -> None:
        self._pruned = time.monotonic()
        current = self.path
        files = []
        for p in self.dir.glob(PATTERN):
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        files.sort()
        total = sum(size for _, size, _ in files)
        writing = _written_by_others(files)
        now = time.time()
        for mtime, size, p in files:
            if p == current or (p in writing and now - mtime <= self.max_age):
                continue
            if total > self.max_bytes or now - mtime > self.max_age:
                with contextlib.suppress(OSError):
                    p.unlink()
                    total -= size

    def write(self, response: dict) -> None:
        if not isinstance(response, dict):
            return
        record = masked(response) if self.mask else response
        with self._lock:
            try:
                self._logger.info("", user_input=record, project=self.project, model=record.get("model"))
                if self._fh.tell() > self.rotate_at:
                    self._open()
                elif time.monotonic() - self._pruned > PRUNE_EVERY:
                    self._prune()
            except (OSError, ValueError) as err:
                log.warning("query log %s: a record was not written: %s", self.path, getattr(err, "strerror", err))

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _written_by_others(files: list) -> set[Path]:
    """The newest file of each other running process: the one it is writing (``files`` sorted oldest first)."""
    newest: dict[int, Path] = {}
    for _, _, p in files:
        m = NAME.fullmatch(p.name)
        if m and int(m.group(1)) != os.getpid():
            newest[int(m.group(1))] = p
    return {p for pid, p in newest.items() if _alive(pid)}


def ensure_dir(folder: Path) -> None:
    """The query log's folder exists (0750) and is writable, else ConfigError naming it."""
    from nlu_ci.errors import ConfigError

    try:
        folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--query-log {folder}: cannot create: {err.strerror or err}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--query-log {folder}: not writable")


def validate(settings) -> None:
    """What ``from_settings`` would refuse, checked without opening a file (the lean server's supervisor)."""
    from nlu_ci.errors import ConfigError

    if not settings.query_log:
        return
    for name in ("query_log_max_mb", "query_log_max_age_hours"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')}: must be more than 0, not {getattr(settings, name)}")
    ensure_dir(Path(settings.query_log))


def from_settings(settings, writers: int = 1) -> QueryLog | None:
    """The query log the settings ask for, or None (off: the default); ``writers``: processes writing at once."""
    validate(settings)
    if not settings.query_log:
        return None
    return QueryLog(Path(settings.query_log), int(settings.query_log_max_mb * 1024 * 1024),
                    settings.query_log_max_age_hours * 3600, settings.query_log_mask,
                    writers=writers)  # project: rasa_nlu's 'default'
