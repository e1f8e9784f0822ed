"""Shared by the serving tests and ``bench_swap.py``: real ``nlu-ci run``/``rollback`` into a store, the real model
server and the real rasa_nlu server as subprocesses on loopback, a parse load, and bounded waits."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support.data import ROOT, cli_env, load_sample, run_cli, write_data  # noqa: E402

# intents only, trains in about a second: serving does not care how good the model is
SERVING_CONFIG = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: nlu_ci.components.LinearIntentClassifier
"""
PROMOTE_ALL = "min_intent_f1: 0.0\nmin_improvement: off\nsignificance: off\nper_intent_max_drop: off\n" \
              "entity_f1: off\nmust_pass: off\n"
REJECT_ALL = PROMOTE_ALL.replace("min_improvement: off", "min_improvement: 0.9")  # +0.9 F1: never
TEXTS = ["i want a large pizza", "hello there", "what's the weather in berlin tomorrow", "book a table for two",
         "thanks a lot", "no, not that", "yes please", "bye"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, step: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.1f}s")
        time.sleep(step)


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Write ``data`` on a raw socket to 127.0.0.1:``port`` (heads no client library sends), read until the server
    closes (or ``timeout``); the answer's bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def zip_is_complete_model(body: bytes) -> tuple[str, list[str]]:
    """(the model name in nlu_ci.json, problems): every file the metadata lists is in the zip with its sha256."""
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        meta = json.loads(zf.read("nlu_ci.json"))
        names = set(zf.namelist())
        problems = [f"{rel}: missing" for rel in meta["files"] if rel not in names]
        problems += [f"{rel}: checksum" for rel, digest in meta["files"].items()
                     if rel in names and hashlib.sha256(zf.read(rel)).hexdigest() != digest]
        problems += ["metadata.json missing"] if "metadata.json" not in names else []
    return meta["model"], problems


class Store:
    """A model store in ``root`` with data variants, trained and promoted by the real CLI."""

    def __init__(self, root: Path, config: str = SERVING_CONFIG):
        self.root = root
        self.models = root / "models"
        self.config = root / "serving_config.yml"
        self.config.write_text(config)
        (root / "promote_all.yml").write_text(PROMOTE_ALL)
        (root / "reject_all.yml").write_text(REJECT_ALL)
        self.examples = load_sample()["rasa_nlu_data"]["common_examples"]

    def env(self, **extra: str) -> dict[str, str]:
        return cli_env(self.models, NLU_CI_CONFIG=str(self.config), **extra)

    def run(self, variant: int, promote: bool = True) -> dict:
        """Train on the sample minus ``variant`` examples (each variant has its own fingerprint)."""
        data = write_data(self.root / f"data_{variant}.json", self.examples[: len(self.examples) - variant])
        policy = self.root / ("promote_all.yml" if promote else "reject_all.yml")
        res = run_cli(["run", "--json", "--data", str(data), "--policy", str(policy)], self.env(), timeout=600)
        assert res.code == 0, res.output[-2000:]
        return res.json

    def rollback(self, model: str | None = None) -> dict:
        res = run_cli(["rollback", "--json"] + ([model] if model else []), self.env(), timeout=120)
        assert res.code == 0, res.output[-2000:]
        return res.json

    def active(self) -> str | None:
        path = self.models / "default" / "ACTIVE"
        return path.read_text().strip() if path.exists() else None


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start(args: list[str], env: dict[str, str], log: Path, url: str, ready_path: str, timeout: float = 120) -> Server:
    fh = open(log, "wb")  # noqa: SIM115 (the child writes it; closed with the process)
    proc = subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", *args], env=env, stdout=fh, stderr=subprocess.STDOUT,
                            cwd=str(ROOT))
    server = Server(proc, url, log)

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"{args[0]} exited {proc.returncode}: {server.log_text()[-2000:]}")
        with contextlib.suppress(OSError):
            return http_get(url + ready_path, timeout=2)[0] == 200
        return False

    try:
        wait_until(up, timeout, step=0.2, what=f"{args[0]} ready")
    except BaseException:
        server.stop()
        raise
    return server


def start_model_server(store: Store, tmp: Path, **env: str) -> Server:
    port = free_port()
    return start(["serve-models", "--host", "127.0.0.1", "--port", str(port), "--zip-cache", str(tmp / "zips")],
                 store.env(**env), tmp / "model_server.log", f"http://127.0.0.1:{port}", "/health")


WORKERS = 2  # the lean server's workers in these tests (both cores; the metrics and the swaps are summed over them)


def start_rasa(store: Store, model_url: str, tmp: Path, pull_interval: float = 1.0, swap: str = "atomic",
               server: str = "lean") -> Server:
    """``nlu-ci serve`` (``--server lean`` with ``WORKERS`` workers, or ``rasa``: rasa_nlu's own server)."""
    port = free_port()
    return start(["serve", "--host", "127.0.0.1", "--port", str(port), "--model-url", model_url,
                  "--pull-interval", str(pull_interval), "--swap", swap, "--server", server,
                  *(["--workers", str(WORKERS)] if server == "lean" else [])],
                 store.env(TMPDIR=str(tmp)), tmp / f"rasa_{port}.log", f"http://127.0.0.1:{port}", "/ready")


def parse(url: str, text: str = "i want a large pizza", timeout: float = 10) -> tuple[int, dict]:
    status, _, body = http_get(f"{url}/parse?q={urllib.request.quote(text)}", timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {"raw": body[:200].decode(errors="replace")}


@dataclass
class Load:
    """``threads`` clients sending /parse back to back until ``stop()``, at most ``max_requests`` in all."""

    url: str
    threads: int = 4
    max_requests: int = 200_000
    results: list[tuple[float, float, int, str | None]] = field(default_factory=list)  # (start, seconds, status, model)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _work(self, n: int) -> None:
        i = n
        while not self._stop.is_set() and len(self.results) < self.max_requests:
            t0 = time.monotonic()
            try:
                status, body = parse(self.url, TEXTS[i % len(TEXTS)])
                model = body.get("model")
            except OSError as err:
                status, model = 0, f"error: {err}"
            self.results.append((t0, time.monotonic() - t0, status, model))
            i += 1

    def start(self) -> Load:
        self._workers = [threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=30)

    def failed(self) -> list[tuple]:
        return [r for r in self.results if r[2] != 200 or not (r[3] or "").startswith("model_")]

    def first_answer_by(self, model: str, after: float) -> float | None:
        times = [t + d for t, d, s, m in list(self.results) if m == model and t >= after and s == 200]
        return min(times) if times else None


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def q(p: float) -> float:
        return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]

    return {"n": len(v), "p50_ms": round(q(0.5) * 1000, 1), "p95_ms": round(q(0.95) * 1000, 1),
            "p99_ms": round(q(0.99) * 1000, 1), "max_ms": round(v[-1] * 1000, 1)}


class ActiveWatcher:
    """Records when ``ACTIVE`` changes (polled every 10 ms in a thread): the moment a promotion or rollback lands."""

    def __init__(self, store: Store):
        self.store, self.changes = store, []  # (monotonic time, new name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        last = self.store.active()
        while not self._stop.wait(0.01):
            with contextlib.suppress(OSError):
                now = self.store.active()
                if now != last:
                    self.changes.append((time.monotonic(), now))
                    last = now

    def start(self) -> ActiveWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def changed_to(self, name: str) -> float:
        return wait_until(lambda: next((t for t, n in reversed(self.changes) if n == name), None), 10,
                          what=f"ACTIVE = {name}")
