"""A stdlib threading HTTP server with bounds, so that slow or hostile clients cannot take it down.

* at most ``max_connections`` open connections (one thread each): when a new connection arrives and every slot
  is taken, the connection that has waited longest for its request head is dropped to make room (a client that
  trickles a request, or holds a keep-alive connection idle, is the cheapest to lose); when every connection is
  busy answering, the new one gets 503 and is closed;
* a request head (request line and headers) must arrive within ``head_timeout`` seconds *in all* (a per-read
  timeout alone lets a client send one byte every few seconds for ever); the same bound is the keep-alive idle
  time between two requests;
* every single read or write waits at most ``io_timeout`` seconds (a client that stops reading a zip);
* a client that resets its connection is one log line, never a traceback (``handle_error``).

A dropped connection that had sent part of a request is told why in one line (``answer_dropped`` of the handler:
408 or 503) by its own thread; one that sent nothing (idle keep-alive) is closed without a word. The serving loop
only shuts the socket's read side, which wakes that thread: it never writes to a client itself (except a one-line
non-blocking 503 when every slot is busy answering).
So ``/health`` keeps answering whatever the number of slow connections (tests/reliability/test_hostile_model_server.py).
"""
from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

TIMED_OUT = "timeout"   # the request head did not arrive within head_timeout
EVICTED = "evicted"     # the slot was given to a newer connection
REFUSED = "refused"     # every slot was busy answering


class ClientGone(ConnectionError):
    """A handler found its client gone mid-answer; raised (not logged) so that handle_error says it once."""


@dataclass(frozen=True)
class Limits:
    max_connections: int = 128
    head_timeout: float = 10.0
    io_timeout: float = 30.0


SUMMARY_SECONDS = 60  # dropped connections are summed up in one warning at most this often
FD_RESERVE = 64  # descriptors beside the connections: the listener, logs, the store's files, zips being sent


def ensure_file_limit(max_connections: int) -> str | None:
    """Make room for ``max_connections`` sockets in RLIMIT_NOFILE (raising the soft limit up to the hard one);
    None when there is room, else what is missing, in one line."""
    import resource

    need = max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return None
    if hard != resource.RLIM_INFINITY and hard < need:
        return f"{max_connections} connections need {need} file descriptors, the hard limit is {hard}"
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    except (ValueError, OSError) as err:
        return f"{max_connections} connections need {need} file descriptors (limit {soft}): {err}"
    log.info("raised the open-file limit from %d to %d for %d connections", soft, need, max_connections)
    return None


class _Conn:
    __slots__ = ("sock", "since", "waiting")

    def __init__(self, sock: socket.socket):
        self.sock, self.since, self.waiting = sock, time.monotonic(), True


class BoundedHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # the listen backlog: a burst of connections waits here instead of SYN retries

    def __init__(self, address, handler, limits: Limits | None = None, on_drop=None):
        self.limits = limits or Limits()
        self.on_drop = on_drop or (lambda reason: None)  # a metric
        self._conns: dict[socket.socket, _Conn] = {}     # the connections that hold a slot
        self._gone: dict[socket.socket, str] = {}        # dropped, their thread still answering: why
        self._lock = threading.Lock()
        self._emfile_logged = 0.0
        self._drops: dict[str, int] = {}    # since the last summary line
        self._drops_logged = time.monotonic()
        super().__init__(address, handler)

    # ---------------------------------------------------------------- bookkeeping (called by the handler)

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def waiting(self, sock: socket.socket) -> None:
        """The handler starts reading a request head (the first, or the next one on a kept-alive connection)."""
        with self._lock:
            conn = self._conns.get(sock)
            if conn is not None:
                conn.waiting, conn.since = True, time.monotonic()

    def busy(self, sock: socket.socket) -> str | None:
        """The head has arrived: the connection may no longer be dropped. Returns why it was dropped, if it was."""
        with self._lock:
            conn = self._conns.get(sock)
            if conn is not None:
                conn.waiting = False
            return self._gone.get(sock)

    def dropped(self, sock: socket.socket) -> str | None:
        with self._lock:
            return self._gone.get(sock)

    # ---------------------------------------------------------------- the serving loop's side

    def get_request(self):
        try:
            return super().get_request()
        except OSError as err:
            if err.errno in (errno.EMFILE, errno.ENFILE):  # out of file descriptors: do not spin on the listener
                now = time.monotonic()
                if now - self._emfile_logged > 60:
                    log.warning("cannot accept a connection: %s (lower --model-server-max-connections or raise the "
                                "file limit)", err.strerror)
                    self._emfile_logged = now
                time.sleep(0.05)
            raise

    def process_request(self, request, client_address) -> None:
        with self._lock:
            if len(self._conns) >= self.limits.max_connections:
                waiting = [c for c in self._conns.values() if c.waiting]
                if not waiting:
                    refused = True
                else:
                    refused = False
                    self._drop(min(waiting, key=lambda c: c.since), EVICTED)
            else:
                refused = False
            if not refused:
                self._conns[request] = _Conn(request)
        if refused:
            with self._lock:
                self._count_drop(REFUSED)
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)  # a thread for this connection
        except RuntimeError as err:  # can't start new thread
            log.warning("no thread for a connection from %s: %s", client_address[0], err)
            self.shutdown_request(request)

    def service_actions(self) -> None:
        """Between two polls of the listener (every poll_interval): drop the heads that took too long."""
        now = time.monotonic()
        deadline = now - self.limits.head_timeout
        with self._lock:
            for conn in [c for c in self._conns.values() if c.waiting and c.since < deadline]:
                self._drop(conn, TIMED_OUT)
            drops, summary_due = self._drops, now - self._drops_logged >= SUMMARY_SECONDS
            if summary_due:
                self._drops, self._drops_logged = {}, now
        if summary_due and drops:
            log.warning("dropped %s connection(s) in the last %d s (%s): slow or too many clients (limits: %d "
                        "connections, %gs for a request head)", sum(drops.values()), SUMMARY_SECONDS,
                        ", ".join(f"{n} {reason}" for reason, n in sorted(drops.items())),
                        self.limits.max_connections, self.limits.head_timeout)

    def _count_drop(self, reason: str) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + 1
        self.on_drop(reason)

    def _drop(self, conn: _Conn, reason: str) -> None:
        """(lock held) Take the slot back; the connection's own thread wakes up (read side shut) and answers."""
        del self._conns[conn.sock]
        self._gone[conn.sock] = reason
        try:
            conn.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        self._count_drop(reason)

    def _refuse(self, request: socket.socket, client_address) -> None:
        body = b'{"error": "too many open connections: try again"}\n'
        head = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Retry-After: 1\r\nContent-Length: %d\r\n\r\n" % len(body))
        try:
            request.setblocking(False)  # never wait on this client: the serving loop must go on
            request.send(head + body)
        except OSError:
            pass
        log.debug("%s refused: %d connections open", client_address[0], self.limits.max_connections)
        self.shutdown_request(request)

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._conns.pop(request, None)
            self._gone.pop(request, None)
        try:
            request.shutdown(socket.SHUT_WR)  # our answer is complete: FIN after it
        except OSError:
            pass
        if threading.current_thread() is not self._loop_thread:
            _drain(request)
        self.close_request(request)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._loop_thread = threading.current_thread()
        super().serve_forever(poll_interval)

    _loop_thread: threading.Thread | None = None

    def handle_error(self, request, client_address) -> None:
        """One line, never a traceback: a client that resets or drops its connection is not news."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, OSError):
            log.info("%s: connection ended: %s", client_address[0], _one_line(err))
        else:
            log.warning("%s: request failed: %s", client_address[0], _one_line(err))


def _drain(sock: socket.socket, seconds: float = 2.0, limit: int = 1 << 22) -> None:
    """Before closing, read what the client still sends (the rest of a 200 KB path or of a refused body): closing
    a socket with unread input sends a TCP reset, which can destroy our error answer before the client reads it.
    Bounded in time and bytes; nothing is read when nothing is pending."""
    try:
        sock.setblocking(False)  # with a timeout, recv would first wait for input
        if not sock.recv(1, socket.MSG_PEEK):
            return  # the client closed its side: nothing more will come
    except (BlockingIOError, InterruptedError):
        return  # nothing pending now
    except OSError:
        return
    deadline, seen = time.monotonic() + seconds, 0
    try:
        while seen < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            sock.settimeout(min(left, 0.5))
            data = sock.recv(65536)
            if not data:
                return
            seen += len(data)
    except OSError:
        return


def _one_line(err: BaseException | None) -> str:
    if err is None:
        return "unknown error"
    text = (getattr(err, "strerror", None) or str(err) or "").splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


class _EOFTracking:
    """The handler's rfile, noting whether a line ended at the end of the input instead of at a newline."""

    def __init__(self, raw):
        self._raw, self.eof = raw, False

    def readline(self, limit: int = -1) -> bytes:
        line = self._raw.readline(limit)
        if not line.endswith(b"\n") and (limit < 0 or len(line) < limit):
            self.eof = True
        return line

    def __getattr__(self, name):
        return getattr(self._raw, name)


class BoundedHandlerMixin(BaseHTTPRequestHandler):
    """The handler's side of the bounds (a mixin before ``BaseHTTPRequestHandler``); ``answer_dropped(reason)``
    tells a dropped client why, in one line."""

    server: BoundedHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.limits.io_timeout
        super().setup()
        self.rfile = _EOFTracking(self.rfile)

    def handle_one_request(self) -> None:
        # a connection dropped before it sent a byte is closed without a word (an idle keep-alive client would
        # take an answer for the one to its next request); with a partial request it is told why (send_error)
        self.server.waiting(self.connection)
        self.raw_requestline = None
        try:
            super().handle_one_request()
        except ConnectionError:
            if self.raw_requestline is None and self._answered:
                # reset while idle between two requests of a kept-alive connection: the last answer was logged
                # already, and the reset ends nothing that was asked (a second line would double every request)
                self.close_connection = True
                return
            raise
        self._answered += 1

    _answered = 0  # requests answered on this connection

    def parse_request(self) -> bool:
        ok = super().parse_request()
        reason = self.server.busy(self.connection)
        if ok and not reason and self.rfile.eof:
            # http.server takes the end of the input for the end of the headers: a client that sent half a request
            # and closed (or was dropped) would get an answer to a request it never completed
            self.close_connection = True
            return False
        if reason:
            self.close_connection = True
            if ok:  # an error answer went out already otherwise (see send_error)
                self._dropped_answer(reason)
            return False
        return ok

    def send_error(self, code, message=None, explain=None) -> None:
        reason = self.server.dropped(self.connection)
        if reason:
            self.close_connection = True
            self._dropped_answer(reason)
            return
        self.send_error_line(code, message)

    def _dropped_answer(self, reason: str) -> None:
        try:
            self.connection.settimeout(1.0)  # a client that reads nothing does not hold this thread long
            self.answer_dropped(reason)
        except OSError:
            pass

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    # to be provided by the handler
    def answer_dropped(self, reason: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def send_error_line(self, code: int, message: str | None) -> None:  # pragma: no cover
        raise NotImplementedError
