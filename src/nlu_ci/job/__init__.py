"""One run's frame, around the stages of ``pipeline.run``: the stop signals, a scratch dir, the lock on the store
(and, in a cluster, the Lease), every error turned into an outcome, and the record at the end: the output
channels, the report file and the history line, even when the run failed.

``with Job(settings) as job: job.lock_store(); ...`` never lets a run's error out (``KeyboardInterrupt``/``SystemExit`` aside);
``job.report`` is the run's ``RunReport``.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path

from nlu_ci import kube
from nlu_ci.errors import EXIT_OK, EXIT_RUNTIME, LockedError, NluCiError, StoreError, Terminated
from nlu_ci.job.lock import RunLock
from nlu_ci.job.stages import Stages, TerminationRequested, signals_deferred, sigterm_raises
from nlu_ci.outputs import RunRecord, channels
from nlu_ci.redact import redact
from nlu_ci.registry import backends, records
from nlu_ci.registry.base import Registry
from nlu_ci.registry.store import ModelStore, atomic_write_text, iso, now_utc
from nlu_ci.report import document
from nlu_ci.report.model import RunReport
from nlu_ci.settings import Settings

log = logging.getLogger("nlu_ci.pipeline")


class Job:
    def __init__(self, settings: Settings, *, pull_request: bool = False):
        self.settings = settings
        self.pull_request = pull_request  # nlu-ci check: only the channels that run in pull requests publish
        self.started = now_utc()
        self.stamp = self.started.strftime("%Y%m%dT%H%M%S-%f")
        self.report = RunReport(project=settings.project, started_at=iso(self.started))
        self.stage = Stages(self.report.durations)
        self.registry: Registry | None = None
        self.lock: RunLock | None = None  # the file lock and, in a cluster, the Lease (whose session sends Events)
        self.staged: Path | None = None   # a candidate never committed (dry run): discarded at the end
        self._tmp: Path | None = None
        self._frame = contextlib.ExitStack()
        self._t0 = time.perf_counter()

    @property
    def store(self) -> ModelStore:
        return self.registry.store

    @property
    def tmp(self) -> Path:
        """The run's scratch dir (fetched data, config selection), removed when the run ends."""
        if self._tmp is None:
            self._tmp = Path(self._frame.enter_context(tempfile.TemporaryDirectory(prefix="nlu-ci-")))
        return self._tmp

    def __enter__(self) -> Job:
        self._t0 = time.perf_counter()
        self._frame.enter_context(sigterm_raises())
        return self

    def lock_store(self) -> None:
        """The registry, and the lock on its store: ``LockedError`` when another run holds it."""
        self.registry = backends.build(self.settings)
        with self.stage("lock"):
            self.store.ensure()
            self.lock = RunLock(self.store, lambda: kube.connect(self.settings))  # no session outside a cluster
            self.lock.acquire()
            self.store.clean_incoming()
            records.start(self.settings, self.store, self.report)  # report retention; room on a full volume

    def __exit__(self, kind, err, tb) -> bool:
        try:
            self._frame.close()  # the scratch dir removed, the stop signals back to what they were
        except BaseException as late:  # noqa: BLE001 - a stop signal or a cleanup error is still the run's outcome
            err = err or late
        handled = err is None or self._fail(err)
        self._record()
        return handled

    def _fail(self, err: BaseException) -> bool:
        """The outcome of a run stopped by ``err``; False for what must go on (KeyboardInterrupt, SystemExit)."""
        report = self.report
        if isinstance(err, TerminationRequested):
            stopped = Terminated(str(err))
            report.end("failed", stopped.exit_code, str(stopped))
            log.error("%s", stopped)
        elif isinstance(err, LockedError):
            report.end("locked", EXIT_OK, str(err))
            log.warning("%s", err)
        elif isinstance(err, NluCiError):
            report.end("failed", err.exit_code, redact(str(err)))
            log.error("%s", redact(err))
        elif isinstance(err, Exception):  # a bug or an unexpected library error: still report, never lose the store
            message = redact(f"internal error: {type(err).__name__}: {' '.join(str(err).split())}")
            report.end("failed", EXIT_RUNTIME, message)
            log.error("%s", message, exc_info=err)
        else:
            return False
        return True

    def _record(self) -> None:
        """Publish to every output channel, then write the report and the history line. Best effort: a failure
        here never hides the outcome; a stop signal now must not lose the run's record."""
        report = self.report
        with signals_deferred(report.warnings):
            held = self.lock is not None and self.lock.held
            if held:
                self.store.discard(self.staged)
                self.store.clean_incoming(quiet=True)  # whatever a failed stage left half-written
            report.durations["total"] = round(time.perf_counter() - self._t0, 3)
            report.finished_at = iso(now_utc())
            self._publish()
            if held:
                self._write_record()
            if self.settings.report:
                try:
                    save_text(Path(self.settings.report), document.to_json(report) + "\n")
                except NluCiError as err:
                    log.error("cannot write --report: %s", err)
            if self.lock is not None:
                self.lock.release()

    def _publish(self) -> None:
        store_dir = self.store.dir if self.registry is not None else Path(self.settings.models_dir) / self.settings.project
        history = None  # None: the metrics channel reads it from store_dir itself
        if self.registry is not None:
            try:
                history = self.store.history()
            except (OSError, NluCiError):
                history = None
        record = RunRecord(store_dir=store_dir, reports_dir=store_dir / "reports", stamp=self.stamp, history=history,
                           save=save_text)
        try:
            outputs = channels.build(self.settings, pull_request=self.pull_request,
                                     kube_session=self.lock.kube if self.lock is not None else None)
        except Exception as err:  # noqa: BLE001
            log.warning("cannot build the output channels: %s", redact(err))
            outputs = []
        channels.publish_all(outputs, self.report, record)

    def _write_record(self) -> None:
        # report retention, the report (once more after freeing space on a full volume) and the history line;
        # never raises: a record that cannot be written is a warning and ``record_failures``
        records.finish(self.settings, self.store, self.report, self.stamp, history_line(self.report))


def save_text(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically (its folder made first); ``StoreError`` when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"{path.parent}: cannot create: {err.strerror or err}") from None
    atomic_write_text(path, text)


def history_line(report: RunReport) -> dict:
    cand, active, decision = report.candidate, report.active, report.decision
    return {"event": "run", "outcome": report.outcome, "started_at": report.started_at,
            "finished_at": report.finished_at, "error": report.error,
            "fingerprint": report.data.fingerprint if report.data is not None else None,
            "revision": report.data.revision if report.data is not None else None,
            "candidate": cand.model if cand else None, "candidate_intent_f1": cand.intent_f1 if cand else None,
            "active": active.model if active else None, "active_intent_f1": active.intent_f1 if active else None,
            "reason": decision.reason if decision else None}
