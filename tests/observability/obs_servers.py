"""Real servers for the observability tests, each on a free loopback port with temporary storage:
Debian's ``prometheus-pushgateway`` and ``prometheus`` (binaries from .ci/run's apt-get), and a Slack
webhook receiver (``http.server``)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


def binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


PUSHGATEWAY_BIN = binary("prometheus-pushgateway", "pushgateway")
PROMETHEUS_BIN = binary("prometheus")
PROMTOOL_BIN = binary("promtool")
MISSING = "not installed (apt-get install prometheus prometheus-pushgateway; .ci/run does it)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0, auth=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=1, auth=auth).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s: {log.read_text()[-2000:]}")


class Server:
    def __init__(self, args: list[str], ready_url: str, log: Path, auth=None):
        self.log = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._fh, stderr=subprocess.STDOUT)
        try:
            wait_ready(ready_url, self.proc, log, auth=auth)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()


class Pushgateway(Server):
    def __init__(self, workdir: Path, web_config: Path | None = None, auth=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        # Debian's build persists to /var/lib/prometheus by default: each test server gets its own file
        args = [PUSHGATEWAY_BIN, f"--web.listen-address=127.0.0.1:{self.port}",
                f"--persistence.file={workdir / 'pushgateway.data'}"]
        if web_config is not None:
            args.append(f"--web.config.file={web_config}")
        super().__init__(args, f"{self.url}/-/ready", workdir / "pushgateway.log", auth=auth)

    def metrics_text(self, auth=None) -> str:
        return requests.get(f"{self.url}/metrics", timeout=5, auth=auth).text

    def groups(self, auth=None) -> list[dict]:
        return requests.get(f"{self.url}/api/v1/metrics", timeout=5, auth=auth).json()["data"]


class Prometheus(Server):
    """Scrapes one Pushgateway every second with ``honor_labels: true`` and loads the alert rules."""

    def __init__(self, workdir: Path, pushgateway_port: int, rules: Path | None = MONITORING / "alerts.rules.yml"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)] if rules else [],
            "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True, "scrape_interval": "1s",
                                "static_configs": [{"targets": [f"127.0.0.1:{pushgateway_port}"]}]}],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        args = [PROMETHEUS_BIN, f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d", "--log.level=warn"]
        super().__init__(args, f"{self.url}/-/ready", workdir / "prometheus.log")

    def api(self, path: str, **params) -> dict:
        response = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        return data["result"]

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step}")
        return data["result"]

    def wait_for(self, expr: str, predicate, timeout: float = 20.0) -> list[dict]:
        """Poll an instant query until ``predicate(result)`` holds (a scrape happened)."""
        deadline = time.monotonic() + timeout
        result: list[dict] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expr}: last result {result}")


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class SlackReceiver:
    """A real HTTP server standing in for Slack's incoming-webhook endpoint (same answers: 200 ``ok``,
    404 ``no_service``, ...). ``responses`` is a queue of (status, body, delay seconds, headers)."""

    responses: list[tuple[int, str, float, dict]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def start(self) -> SlackReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers), body))
                status, text, delay, headers = (receiver.responses.pop(0) if receiver.responses
                                                else (200, "ok", 0.0, {}))
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(text.encode())))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a handler still sleeping (timeout tests) must not hold teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0TEST/B0TEST/xoxsecretwebhook42"
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
