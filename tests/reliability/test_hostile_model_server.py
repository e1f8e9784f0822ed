"""Hostile requests to a real ``nlu-ci serve-models`` process (issue 24, item 3; docs/reliability.md).

* every malformed request of the probe (a 70 KB ``If-None-Match``, too many headers, a 200 KB path, ``OPTIONS``,
  ``HTTP/9.9``, HTTP/0.9, garbage request lines, unknown methods, bodies it never reads) answers a status line
  and exactly one JSON line, and the server logs at most one line for it, never a traceback;
* a client that resets its connection (before, during and after its request, in the middle of a zip) costs at
  most one log line and no traceback;
* 1,000 slow connections (opened, a partial request, held; re-opened as soon as the server closes one) at a
  1,024-file limit: ``/health`` and ``/models/<project>`` keep answering (serving/bounded.py).

The server is the real CLI in a subprocess, with its open-file limit set to 1,024 (what the issue measured with).
"""
from __future__ import annotations

import contextlib
import json
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.data import ROOT, cli_env

FILE_LIMIT = 1024
SLOW = 1000


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


class ModelServerProcess:
    def __init__(self, models: Path, tmp: Path, *extra: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"model_server_{self.port}.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nlu_ci.cli", "serve-models", "--host", "127.0.0.1", "--port", str(self.port),
             "--zip-cache", str(tmp / "zips"), *extra],
            env=cli_env(models), stdout=self._fh, stderr=subprocess.STDOUT, cwd=str(ROOT), preexec_fn=_limit_files)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.text()
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "serve-models not ready: " + self.text()
            time.sleep(0.1)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._fh.close()


@pytest.fixture(scope="module")
def models(seeded_template, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_ms") / "models"
    shutil.copytree(seeded_template, root / "default")
    return root


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    proc = ModelServerProcess(models, tmp_path_factory.mktemp("hostile_ms_run"))
    assert requests.get(proc.url + "/models/default", timeout=30).status_code == 200  # the zip is built (a log line)
    deadline = time.monotonic() + 10
    while '"GET /models/default" 200' not in proc.text():  # logged just after the answer: not a case's line
        assert time.monotonic() < deadline, proc.text()
        time.sleep(0.05)
    yield proc
    proc.stop()


def read_answer(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.x answer: (status, headers, body by its Content-Length)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a complete answer: {data[:300]!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    match = re.fullmatch(r"HTTP/1\.[01] (\d{3}) .*", lines[0])
    assert match, f"not a status line: {lines[0]!r}"
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the body"
        body += chunk
    return int(match.group(1)), headers, body[:length]


def json_line(headers: dict[str, str], body: bytes) -> dict:
    assert headers.get("content-type") == "application/json", headers
    text = body.decode()
    assert text.endswith("\n") and text.count("\n") == 1, text[:300]
    return json.loads(text)


def new_log(server: ModelServerProcess, start: int, settle: float = 0.3) -> list[str]:
    time.sleep(settle)  # the line is written after the answer went out
    return server.text()[start:].splitlines()


HEAD = b"Host: x\r\n"
CASES = {
    "if-none-match 70 KB": (b"GET /models/default HTTP/1.1\r\n" + HEAD + b"If-None-Match: " + b"a" * 70_000 +
                            b"\r\n\r\n", 431),
    "150 headers": (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
    "path 200 KB": (b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", 414),
    "OPTIONS": (b"OPTIONS * HTTP/1.1\r\n" + HEAD + b"\r\n", 405),
    "OPTIONS a model": (b"OPTIONS /models/default HTTP/1.1\r\n" + HEAD + b"\r\n", 405),
    "TRACE": (b"TRACE / HTTP/1.1\r\n" + HEAD + b"\r\n", 405),
    "HTTP/9.9": (b"GET /health HTTP/9.9\r\n" + HEAD + b"\r\n", 505),
    "HTTP/2.0 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    "HTTP/0.9": (b"GET /health\r\n", 505),
    "bad version": (b"GET /health FOO/1.1\r\n" + HEAD + b"\r\n", 400),
    "version garbage": (b"GET /health HTTP/1.x\r\n" + HEAD + b"\r\n", 400),
    "binary garbage": (b"\x00\xff\xfe garbage \x01\x02\r\n\r\n", 400),
    "one word": (b"hello\r\n\r\n", 400),
    "four words": (b"GET /health HTTP/1.1 extra\r\n\r\n", 400),
    "empty line": (b"\r\n", 400),
    "TLS hello": (bytes.fromhex("16030100a5010000a10303") + bytes(range(0x21, 0x7f)) + b"\r\n\r\n", 400),
    "unknown method": (b"BREW /pot HTTP/1.1\r\n" + HEAD + b"\r\n", 501),
    "header line without colon": (b"GET /nothing HTTP/1.1\r\n" + HEAD + b"no colon here\r\nConnection: close\r\n\r\n",
                                  404),
    "NUL in path": (b"GET /models/def%00ault HTTP/1.1\r\n" + HEAD + b"Connection: close\r\n\r\n", 404),
    "invalid UTF-8 in path": (b"GET /models/%ff%fe HTTP/1.1\r\n" + HEAD + b"Connection: close\r\n\r\n", 404),
    "raw bytes in path": (b"GET /models/\xff\xfe HTTP/1.1\r\n" + HEAD + b"Connection: close\r\n\r\n", 404),
    "traversal": (b"GET /models/..%2f..%2fetc HTTP/1.1\r\n" + HEAD + b"Connection: close\r\n\r\n", 404),
    "POST with a body": (b"POST /models/default HTTP/1.1\r\n" + HEAD + b"Content-Length: 5\r\n\r\nhello", 405),
    "chunked PUT": (b"PUT /models/default HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
                    405),
    "10 MB Content-Length on a GET": (b"GET /nothing HTTP/1.1\r\n" + HEAD + b"Content-Length: 10000000\r\n\r\nabc",
                                      404),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_malformed_request_is_a_status_and_one_json_line(server, name):
    raw, want = CASES[name]
    start = len(server.text())
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        status, headers, body = read_answer(sock)
        assert status == want and json_line(headers, body)["error"]
        if status >= 400 and status != 404:  # what follows can not be trusted to be a request: closed
            sock.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                rest = sock.recv(65536)
                assert rest == b"", rest[:200]
    lines = new_log(server, start)
    assert len(lines) <= 1 and not any("Traceback" in line for line in lines), lines
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or hostile client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _reset_mid_zip(sock):
    sock.sendall(b"GET /models/default HTTP/1.1\r\n" + HEAD + b"\r\n")
    sock.recv(100)


RESETS = {
    "at once": lambda sock: None,
    "mid request line": lambda sock: sock.sendall(b"GET /models/def"),
    "mid headers": lambda sock: sock.sendall(b"GET /models/default HTTP/1.1\r\nHost: x\r\nIf-None"),
    "mid 70 KB header": lambda sock: sock.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 40_000),
    "after a request, before reading": lambda sock: sock.sendall(b"GET /models/default HTTP/1.1\r\n" + HEAD + b"\r\n"),
    "mid zip": _reset_mid_zip,
    "mid metrics": lambda sock: sock.sendall(b"GET /metrics HTTP/1.1\r\n" + HEAD + b"\r\n"),
}


@pytest.mark.parametrize("when", list(RESETS))
def test_a_reset_connection_is_at_most_one_line(server, when):
    start = len(server.text())
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        RESETS[when](sock)
        reset(sock)
    lines = new_log(server, start, settle=0.5)
    assert len(lines) <= 3 and not any("Traceback" in line or "Error:" in line and "connection ended" not in line
                                       for line in lines), lines
    assert "Traceback" not in server.text()
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


# ---------------------------------------------------------------------------------------------- slow clients

# n connections that each send a partial request and hold it; one the server closes is opened again at once (at
# most max_reopen times in all), so the server never gets rid of them. A process of its own (its own GIL and file
# limit): the probe's timings are the server's, not this test's. Prints what it did as JSON when stdin closes.
SLOW_CLIENTS = r"""
import json, resource, socket, sys, threading
port, n, max_reopen = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 200)), hard))
PARTIAL = b"GET /models/default HTTP/1.1\r\nHost: x\r\nUser-Agent: slow"
stats = {"opened": 0, "failed": 0, "reopened": 0}
def open_one():
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(PARTIAL)
        sock.setblocking(False)
        stats["opened"] += 1
        return sock
    except OSError:
        stats["failed"] += 1
        return None
def closed(sock):
    if sock is None:
        return True
    try:
        sock.recv(1, socket.MSG_PEEK)  # data (the 408/503 line) or b"" (closed)
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True
socks = [open_one() for _ in range(n)]
print(json.dumps(dict(stats, ready=True)), flush=True)
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
while not stop.wait(0.02):
    for i, sock in enumerate(socks if stats["reopened"] < max_reopen else []):
        if stop.is_set() or stats["reopened"] >= max_reopen:
            break
        if closed(sock):
            if sock is not None:
                sock.close()
            socks[i] = open_one()
            stats["reopened"] += 1
stats["open_at_end"] = sum(not closed(s) for s in socks)
print(json.dumps(stats), flush=True)
"""


class SlowClients:
    def __init__(self, port: int, n: int, max_reopen: int):
        self.proc = subprocess.Popen([sys.executable, "-c", SLOW_CLIENTS, str(port), str(n), str(max_reopen)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line, "the slow clients did not start"
        self.started = json.loads(line)

    def stop(self) -> dict:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        out = self.proc.stdout.read()
        self.proc.stdout.close()
        lines = [line for line in (out or "").splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else {}


@pytest.mark.parametrize("reopen", [0, 50_000], ids=["held", "re-opened at once"])
def test_health_and_models_answer_through_1000_slow_connections(models, tmp_path, reopen):
    """held: the issue's probe (1,000 opened, a partial request each, held); re-opened: each one the server closes
    is opened again at once, as fast as one client process can (the server's worst case: it never gets a rest)."""
    server = ModelServerProcess(models, tmp_path)  # the defaults: 128 connections, 10 s for a request head
    slow = None
    try:
        etag = requests.get(server.url + "/models/default", timeout=10).headers["ETag"]
        slow = SlowClients(server.port, SLOW, reopen)
        assert slow.started["opened"] + slow.started["failed"] == SLOW, slow.started
        latencies, answers = [], []
        # held: beyond the 10 s head timeout (the last 128 are timed out too); re-opened: the steady state
        until = time.monotonic() + (15 if not reopen else 6)
        while time.monotonic() < until:
            for path, headers, want in (("/health", {}, 200), ("/models/default", {"If-None-Match": etag}, 204)):
                t0 = time.monotonic()
                try:
                    status = requests.get(server.url + path, headers=headers, timeout=5).status_code
                except requests.RequestException as err:
                    status = f"{type(err).__name__}"
                latencies.append(time.monotonic() - t0)
                answers.append((path, status, want))
            time.sleep(0.2)
        stats = slow.stop()
        slow = None
        bad = [a for a in answers if a[1] != a[2]]
        assert not bad, f"{len(bad)} of {len(answers)} answers failed during the attack: {bad[:5]}"
        metrics = requests.get(server.url + "/metrics", timeout=10).text
        dropped = {m.group(1): float(m.group(2)) for m in
                   re.finditer(r'nlu_ci_model_server_dropped_connections_total\{reason="(\w+)"\} (\S+)', metrics)}
        if reopen:
            assert stats["reopened"] > 0 and dropped["evicted"] > SLOW, (stats, dropped)
        else:  # all but the last 128 made room for newer ones; those 128 ran out of time (10 s) for their head
            assert stats["open_at_end"] == 0 and dropped["evicted"] + dropped["timeout"] >= SLOW - stats["failed"], \
                (stats, dropped)
            assert dropped["timeout"] > 0, dropped
        text = server.text()
        assert "Traceback" not in text and "Too many open files" not in text
        # a line per dropped connection would flood the log: one summary warning a minute at most
        assert len(text.splitlines()) < 50, text[-3000:]
        latencies.sort()
        print(f"\n{len(answers)} answers during {SLOW} slow connections ({stats}): max {latencies[-1] * 1000:.0f} ms, "
              f"median {latencies[len(latencies) // 2] * 1000:.0f} ms; dropped {dropped}")
    finally:
        if slow is not None:
            slow.stop()
        server.stop()
