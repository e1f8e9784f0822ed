"""``nlu-ci serve`` on the lean server (``--server lean``, the default): N worker processes answering on one port.

The supervisor (the ``nlu-ci serve`` process) binds ``--host``/``--port``, forks ``--workers`` / ``NLU_CI_WORKERS``
workers (0: the container's CPU limit, ``nlu_ci.cpus``) and hands each accepted connection to the next worker in
turn over a Unix socket (``SCM_RIGHTS``): the load is spread evenly even over a few keep-alive connections, which
``SO_REUSEPORT``'s hash or a shared ``accept`` do not promise. Each worker is one asyncio loop running
``lean_app`` over its own rasa_nlu ``DataRouter``: it pulls the model URL itself (every ``--pull-interval``, with
the atomic swap), so during a swap one worker may answer with the new model a pull interval before another;
each request is answered by one model, whole. ``/ready`` answers for the worker that gets the probe.

Per process, as rasa_nlu's DataRouter does it: each worker writes its own query log file (its pid in the name,
``query_log``); the metrics are prometheus_client's multiprocess mode in a scratch folder of the supervisor
(``parse_metrics``), so a scrape of any worker counts all of them; a worker that died is marked dead there.

A worker that dies is started again (one log line); SIGTERM/SIGINT stop the workers (each finishes its open
requests within 2 s) and the supervisor returns.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import socket
import tempfile
import time

from nlu_ci.errors import ConfigError
from nlu_ci.serving import lockstep

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000
RESPAWN_PAUSE = 1.0  # seconds before a worker that died is started again
START_WAIT = 120.0  # seconds the supervisor waits for every worker's first pull before it answers with the first
STOP_GRACE = 10.0  # seconds the workers have to stop after SIGTERM before they are killed


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as err:
        sock.close()
        raise ConfigError(f"--host/--port: cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.setblocking(False)
    return sock


def run(settings) -> str:
    """Serve until SIGTERM/SIGINT; returns the address it served on."""
    from nlu_ci import cpus
    from nlu_ci.serving import query_log, rasa_server

    rasa_server.endpoint_config(settings)  # ConfigError now, not in every worker
    query_log.validate(settings)
    port = settings.port or DEFAULT_PORT
    sock = listen(settings.host, port)
    address = f"http://{settings.host}:{port}"
    metrics_dir = tempfile.mkdtemp(prefix="nlu-ci-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before any worker makes a metric
    supervisor = _Supervisor(settings, cpus.workers(), metrics_dir)
    log.info("lean server on %s with %d worker(s), pulling %s every %gs", address, len(supervisor.workers),
             rasa_server._safe_url(settings), settings.pull_interval)
    try:
        supervisor.serve(sock)
    finally:
        sock.close()
        supervisor.stop()
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return address


class _Supervisor:
    def __init__(self, settings, n: int, metrics_dir: str):
        self.settings, self.metrics_dir = settings, metrics_dir
        self.workers: list[tuple[int, socket.socket] | None] = [None] * max(1, n)
        self.up: set[int] = set()  # pids of the workers that have said they answer (their first pull done)
        self.shared = lockstep.Shared()  # the model all workers answer with, published by the tally
        self.tally = lockstep.Tally(self.shared)
        self.next = 0
        self.stopping = False

    def spawn(self, i: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                ours.close()
                for w in self.workers:
                    if w is not None:
                        w[1].close()
                code = worker_main(self.settings, theirs, len(self.workers), self.shared)
            except BaseException as err:  # noqa: BLE001 (a worker's last word is one log line)
                log.error("worker %d failed: %s: %s", os.getpid(), type(err).__name__, " ".join(str(err).split())[:300])
            finally:
                os._exit(code)
        theirs.close()
        ours.setblocking(False)
        self.workers[i] = (pid, ours)

    def serve(self, sock: socket.socket) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)

        def stop(signum, frame):
            self.stopping = True

        old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for i in range(len(self.workers)):
                self.spawn(i)
            died: dict[int, float] = {}
            started = time.monotonic()
            while not self.stopping:
                chans = {w[1]: w[0] for w in self.workers if w is not None}
                # connections wait in the backlog until every worker answers (or START_WAIT passed): the first
                # /ready that says 200 speaks for all of them
                waiting = [pid for pid in chans.values() if pid not in self.up]
                accepting = self.up and (not waiting or time.monotonic() - started > START_WAIT)
                ready, _, _ = select.select([wake_r, *chans, *([sock] if accepting else [])], [], [], 0.5)
                if wake_r in ready:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 512)
                for chan in chans:
                    if chan in ready:
                        self._hear(chan, chans[chan])
                self._reap(died)
                published = self.tally.settle([w[0] for w in self.workers if w is not None])
                if published:
                    log.info("all %d workers answer with %s now", len(chans), published)
                    for chan in chans:  # switch now, not only at the next request (their log, /ready)
                        with contextlib.suppress(OSError):
                            chan.send(b"switch")
                if sock in ready:
                    self._accept(sock)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)

    def _hear(self, chan: socket.socket, pid: int) -> None:
        while True:
            try:
                message = chan.recv(512)
            except (BlockingIOError, InterruptedError, OSError):
                return
            if not message:  # the worker is gone: _reap sees it
                return
            if message == b"up":
                self.up.add(pid)
            else:
                self.tally.heard(pid, message)

    def _reap(self, died: dict[int, float]) -> None:
        now = time.monotonic()
        for i, w in enumerate(self.workers):
            if w is None:
                if now >= died.get(i, 0.0) and not self.stopping:
                    self.spawn(i)
                continue
            pid, chan = w
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == 0:
                continue
            log.warning("worker %d stopped (%s), starting another", pid, _exit_text(status))
            _mark_dead(pid, self.metrics_dir)
            self.up.discard(pid)
            self.tally.forget(pid)
            chan.close()
            self.workers[i] = None
            died[i] = now + RESPAWN_PAUSE

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # EMFILE and friends: the client retries
                if err.errno not in (errno.ECONNABORTED, errno.EPROTO):
                    log.warning("accept failed: %s", err.strerror or err)
                return
            with conn:
                self._hand_over(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        n = len(self.workers)
        for k in range(n):
            w = self.workers[(self.next + k) % n]
            if w is None or w[0] not in self.up:
                continue
            try:
                socket.send_fds(w[1], [b"c"], [conn.fileno()])
            except OSError:  # that worker is gone or its queue is full: the next one
                continue
            self.next = (self.next + k + 1) % n
            return
        log.warning("no worker took a connection: closed")

    def stop(self) -> None:
        live = [w for w in self.workers if w is not None]
        for pid, _ in live:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for pid, chan in live:
            while True:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.05)
            chan.close()
        self.workers = [None] * len(self.workers)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.WEXITSTATUS(status)}"


def _mark_dead(pid: int, metrics_dir: str) -> None:
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, metrics_dir)


def worker_main(settings, chan: socket.socket, workers: int = 1, shared: lockstep.Shared | None = None) -> int:
    """One worker: rasa_nlu's DataRouter (first pull done), then the lean app on the connections handed over."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the supervisor, which stops the workers
    from prometheus_client import values

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # in case the supervisor imported prometheus_client already
        values.ValueClass = values.MultiProcessValue()

    from nlu_ci.serving import lean_app, parse_metrics, query_log, rasa_server, serve_app

    metrics = parse_metrics.ServingMetrics(settings.project, settings.fallback_threshold)
    if shared is not None and settings.swap == "atomic":  # the workers switch to a pulled model together
        from nlu_ci.serving import swap

        def tell(message: bytes) -> None:
            with contextlib.suppress(OSError):
                chan.send(message)

        step = lockstep.Worker(shared, tell, metrics)
        swap._config.update(stage=step.stage, current=step.current)
    answers = query_log.from_settings(settings, workers)  # this worker's own file, a share of the bound
    workdir = tempfile.mkdtemp(prefix="nlu-ci-serve-")
    router = None
    try:
        router = rasa_server.data_router(settings, metrics, workdir)
        serve_app.observe_answers(router, metrics.answer, *([answers.write] if answers is not None else []))
        app = lean_app.LeanApp(router, metrics=metrics, token=settings.rasa_nlu_token,
                               max_chars=settings.max_message_chars, open_routes=serve_app.OPEN_ROUTES)
        asyncio.run(_serve(app, chan))
    finally:
        if answers is not None:
            answers.close()
        if router is not None:
            with contextlib.suppress(Exception):
                router.pool.shutdown(wait=False)  # rasa_nlu's training pool (never used here): its semaphores
            rasa_server.remove_pulled(router, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


async def _serve(app, chan: socket.socket) -> None:
    from nlu_ci.serving import lean_app

    loop = asyncio.get_running_loop()
    server = lean_app.Server(app)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    chan.setblocking(False)
    pending: set[asyncio.Task] = set()

    def receive() -> None:
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(chan, 16, 8)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                stop.set()
                return
            if not msg and not fds:  # the supervisor is gone
                stop.set()
                return
            if msg == b"switch" and not fds:  # lockstep: a model was published
                app.serving_model()
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                task = loop.create_task(loop.connect_accepted_socket(server, conn))
                pending.add(task)
                task.add_done_callback(pending.discard)

    loop.add_reader(chan.fileno(), receive)
    chan.send(b"up")  # to the supervisor: hand me connections
    await stop.wait()
    loop.remove_reader(chan.fileno())
    await server.shutdown(2.0)
