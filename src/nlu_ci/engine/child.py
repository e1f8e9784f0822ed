"""Run one long C-heavy call (a model fit) in a forked child process, so the job stays responsive to signals.

Why: Python runs a signal handler only between bytecodes of the main thread. While liblinear or crfsuite
fit a model (minutes at 100k examples) the SIGTERM that Kubernetes sends waits for the fit to return, past
the pod's grace period (then SIGKILL: no ``failed`` record, no metrics push, the Lease held for its
duration). Here the parent only waits on a pipe, which a signal interrupts at once (PEP 475: the wait is
not retried when the handler raises): the handler's exception propagates, the child is killed with
SIGKILL and reaped before the exception leaves ``call``, so nothing writes after it.

The child is a ``fork`` of the parent (no re-import, the training data shared copy-on-write), asks the
kernel to kill it when the parent dies (``PR_SET_PDEATHSIG``: a ``kill -9`` of the job never leaves a
training orphan holding the store's lock descriptor), ignores SIGINT (Ctrl-C reaches the whole process
group; the parent decides) and ends with ``os._exit`` (no atexit handlers, no flush of the parent's
buffers). The parent's objects are frozen in the child (``gc.freeze``): its collections never walk them,
so they stay shared pages instead of one copy per child. Its result, or the ``NluCiError`` it raised, comes back pickled over the pipe; any other
exception arrives as a ``RuntimeFailure`` naming its type.

Where ``fork`` is missing, or when called outside the main thread, ``call`` runs the function in-process.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from nlu_ci.errors import NluCiError, RuntimeFailure

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's finally still kills us
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(70)


def _child(fn: Callable[[], Any], writer, parent: int, mask: set) -> None:
    code = 0
    try:
        # the parent's objects to the permanent generation: a full collection here would walk (and so
        # copy-on-write copy) every page of them; the child only adds to what the parent holds
        gc.freeze()
        _die_with_parent(parent)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # blocked by _spawn around the fork
        try:
            answer: tuple = ("ok", fn())
        except NluCiError as err:
            answer = ("error", err)
        except MemoryError:
            answer = ("error", RuntimeFailure("training ran out of memory"))
        except BaseException as err:  # noqa: BLE001 - everything is reported to the parent
            answer = ("error", RuntimeFailure(f"{type(err).__name__}: {err}"))
        try:
            payload = pickle.dumps(answer)
        except Exception as err:  # noqa: BLE001 - an unpicklable result or exception
            payload = pickle.dumps(("error", RuntimeFailure(f"cannot return the result: {err}")))
        writer.send_bytes(payload)
        writer.close()
    except BaseException:  # noqa: BLE001 - the parent sees the exit code
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def isolated() -> bool:
    """Whether ``call`` runs its function in a child process here."""
    return hasattr(os, "fork") and threading.current_thread() is threading.main_thread()


def _handled() -> list[signal.Signals]:
    """The signals with a Python handler here (the job's SIGTERM and SIGINT)."""
    return [s for s in signal.valid_signals() if callable(signal.getsignal(s))]


def _spawn(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Fork a child running ``fn``. Signals with a Python handler are blocked around the fork: one arriving
    while ``os.fork`` runs its at-fork callbacks (logging's lock release) has its handler's exception
    printed as "Exception ignored" and lost, so a SIGTERM then never stopped the run (seen: outcome
    promoted). Blocked, it is delivered once the fork has returned, here, and the child is killed."""
    reader, writer = multiprocessing.Pipe(duplex=False)
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _handled())
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its coverage is the parent's result)
        reader.close()
        _child(fn, writer, parent, mask)
    writer.close()
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile is handled here
    except BaseException:
        reader.close()
        _stop([pid], "forked")
        raise
    return pid, reader


def _receive(reader) -> bytes | None:
    """The child's answer, or None when it died without one; closes ``reader``."""
    try:
        return reader.recv_bytes()
    except EOFError:
        return None  # the child died without an answer: its exit status says how
    finally:
        reader.close()


def _answer(pid: int, reader, what: str) -> Any:
    """The child's result (or its error raised here) once it has answered or died; reaps it."""
    return _decode(pid, _receive(reader), what)


def _decode(pid: int, payload: bytes | None, what: str) -> Any:
    """Reaps the child and returns its result (or raises its error) from its answer ``payload``."""
    _, status = os.waitpid(pid, 0)
    if payload is None:
        if os.WIFSIGNALED(status):
            name = signal.Signals(os.WTERMSIG(status)).name
            raise RuntimeFailure(f"{what} process was killed by {name} (out of memory?)")
        raise RuntimeFailure(f"{what} process ended with exit code {os.WEXITSTATUS(status)} and no result")
    kind, value = pickle.loads(payload)  # noqa: S301 - our own child's answer over our own pipe
    if kind == "error":
        raise value
    return value


def _stop(pids, what: str) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        log.info("%s process %d stopped", what, pid)


def call(fn: Callable[[], Any], what: str = "training") -> Any:
    """``fn()`` in a forked child; its return value (picklable) or the error it raised.

    A signal handler's exception raised while waiting propagates after the child is killed and reaped."""
    if not isolated():
        return fn()
    return run_all([fn], 1, what)[0]


def run_all(fns: list[Callable[[], Any]], workers: int, what: str) -> list[Any]:
    """``[fn() for fn in fns]``, at most ``workers`` at a time, each in a forked child (in order of ``fns``).

    The first error (or a signal while waiting) kills and reaps every running child, then propagates.
    With one worker and one function, or where forking is not possible, the functions run here."""
    if not isolated():
        return [fn() for fn in fns]
    results: list[Any] = [None] * len(fns)
    running: dict[Any, tuple[int, int]] = {}  # reader -> (pid, index)
    todo = list(enumerate(fns))
    try:
        while todo or running:
            while todo and len(running) < max(1, workers):
                index, fn = todo.pop(0)
                pid, reader = _spawn(fn)
                running[reader] = (pid, index)
            for reader in multiprocessing.connection.wait(list(running)):
                pid, index = running.pop(reader)
                try:
                    results[index] = _answer(pid, reader, what)
                except BaseException:
                    running[reader] = (pid, index) if not _reaped(pid) else (-1, index)
                    raise
    finally:
        if running:
            _stop([pid for pid, _ in running.values() if pid > 0], what)
            for reader in running:
                reader.close()
    return results


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG) != (0, 0)
    except ChildProcessError:
        return True


def parallel(fns: list[Callable[[], Any]], workers: int, what: str) -> list[Any]:
    """``[fn() for fn in fns]``: in up to ``workers`` forked children when that is more than one, else here."""
    if workers <= 1 or len(fns) <= 1:
        return [fn() for fn in fns]
    return run_all(fns, workers, what)


class Started:
    """Work that ``start`` began in a forked child: ``result()`` waits for its answer (its error raised here),
    ``stop()`` kills and reaps it if it still runs. Where forking is not possible it ran at once, here.

    A thread of this process receives the answer as soon as the child sends it: an answer bigger than the
    pipe's buffer (a model file, a fold's scores) would otherwise keep the child blocked, and alive with
    every page it holds (~160-400 MB at 100k examples), until the caller asks for it."""

    def __init__(self, what: str, pid: int = 0, reader=None, value: Any = None) -> None:
        self.what, self._pid, self._value = what, pid, value
        self._payload: list[bytes | None] = []
        self._thread: threading.Thread | None = None
        if pid:
            self._thread = threading.Thread(target=lambda: self._payload.append(_receive(reader)),
                                            name=f"nlu-ci {what}", daemon=True)
            self._thread.start()

    def result(self) -> Any:
        if not self._pid:
            return self._value
        try:
            self._thread.join()  # a signal's handler may raise here (POSIX lock waits are interruptible)
            value = _decode(self._pid, self._payload[0], self.what)
        except BaseException:  # its error (it is reaped), or a signal while waiting: killed and reaped here
            self.stop()
            raise
        self._pid = 0
        return value

    def stop(self) -> None:
        pid, self._pid = self._pid, 0
        if pid:
            if not _reaped(pid):
                _stop([pid], self.what)
            self._thread.join(timeout=5)  # its pipe ends with the child (and the children it forked)


def start(fn: Callable[[], Any], what: str) -> Started:
    """``fn()`` begun in a forked child while the caller goes on; ``Started.result()`` is its answer. Outside
    the main thread, or without ``fork``, ``fn`` runs here before ``start`` returns."""
    if not isolated():
        return Started(what, value=fn())
    pid, reader = _spawn(fn)
    return Started(what, pid, reader)


def beside(here: Callable[[], Any], fns: list[Callable[[], Any]], workers: int, what: str) -> tuple[Any, list[Any]]:
    """``(here(), [fn() for fn in fns])``. With more than one worker the ``fns`` run in one forked child (itself
    ``parallel`` over ``workers - 1``) while ``here`` runs in this process, so a big fit here needs no trip
    over a pipe for its result; else the ``fns`` first, then ``here``, all in this process.

    An error in either, or a signal while waiting, kills and reaps the child before it propagates."""
    if workers <= 1 or not fns or not isolated():
        theirs = [fn() for fn in fns]
        return here(), theirs
    started = start(lambda: parallel(fns, workers - 1, what), what)
    try:
        mine = here()
        return mine, started.result()
    finally:
        started.stop()
