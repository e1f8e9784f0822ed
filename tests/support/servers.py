"""Real servers for the tests, each on a loopback port with temporary storage: Debian's
``prometheus-pushgateway`` and ``prometheus`` (binaries from .ci/run's apt-get).

They are other programs, so they cannot be handed a bound socket: a port is picked, and when another
process took it before the server bound it (the server exits with "address already in use") the start is
retried on a new port, a bounded number of times."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
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


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortTaken(RuntimeError):
    pass


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0, auth=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if "address already in use" in log.read_text(errors="replace").lower():
                raise PortTaken(log.read_text(errors="replace")[-300:])
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url, timeout=1, auth=auth).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s: {log.read_text()[-2000:]}")


class Server:
    """``args(port)`` is the command line for a port; started, then polled at ``ready_path`` until ready."""

    attempts = 5

    def __init__(self, args: Callable[[int], list[str]], ready_path: str, log: Path, auth=None):
        self.log = log
        for attempt in range(1, self.attempts + 1):
            self.port = _unused_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(args(self.port), stdout=self._fh, stderr=subprocess.STDOUT)
            try:
                wait_ready(self.url + ready_path, self.proc, log, auth=auth)
                return
            except PortTaken:
                self.stop()
                if attempt == self.attempts:
                    raise
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
        workdir.mkdir(parents=True, exist_ok=True)

        def args(port: int) -> list[str]:
            # Debian's build persists to /var/lib/prometheus by default: each test server gets its own file
            return [PUSHGATEWAY_BIN, f"--web.listen-address=127.0.0.1:{port}",
                    f"--persistence.file={workdir / 'pushgateway.data'}"] + \
                ([f"--web.config.file={web_config}"] if web_config is not None else [])

        super().__init__(args, "/-/ready", workdir / "pushgateway.log", auth=auth)

    def metrics_text(self, auth=None) -> str:
        return requests.get(f"{self.url}/metrics", timeout=5, auth=auth).text

    def groups(self, auth=None) -> list[dict]:
        return requests.get(f"{self.url}/api/v1/metrics", timeout=5, auth=auth).json()["data"]


class Prometheus(Server):
    """Scrapes one Pushgateway every second with ``honor_labels: true`` and loads the alert rules."""

    def __init__(self, workdir: Path, pushgateway_port: int, rules: Path | None = MONITORING / "alerts.rules.yml"):
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)] if rules else [],
            "scrape_configs": [{"job_name": "pushgateway", "honor_labels": True, "scrape_interval": "1s",
                                "static_configs": [{"targets": [f"127.0.0.1:{pushgateway_port}"]}]}],
        }
        (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML

        def args(port: int) -> list[str]:
            return [PROMETHEUS_BIN, f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1d", "--log.level=warn"]

        super().__init__(args, "/-/ready", workdir / "prometheus.log")

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
