"""SIGTERM during training at 100k (for bench/memory.py's page): seconds from the signal to the job's exit,
the report's outcome, whether the metrics reached a real Pushgateway, and whether a training child outlived
the job. The Pushgateway is Debian's ``prometheus-pushgateway``, started by tests/support/servers.py's
``Pushgateway`` (the tests' fixture code, reused)."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.servers import PUSHGATEWAY_BIN, Pushgateway  # noqa: E402
from proctree import tree  # noqa: E402

FAILED = re.compile(r'^nlu_ci_run_outcome\{[^}]*outcome="failed"[^}]*\} 1(\.0)?$', re.M)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def measure_sigterm(start: Callable[[dict, Path], subprocess.Popen], after_s: float) -> dict:
    """``start(extra_env, models_dir)`` starts the job; SIGTERM ``after_s`` seconds after training started."""
    if PUSHGATEWAY_BIN is None:
        return {"after_s": after_s, "error": "prometheus-pushgateway is not installed (make install-system)"}
    with tempfile.TemporaryDirectory(prefix="nlu-ci-bench-term-") as tmp:
        gateway = Pushgateway(Path(tmp) / "pushgateway")
        try:
            proc = start({"PUSHGATEWAY_URL": gateway.url}, Path(tmp) / "models")
            err_lines = []
            for line in proc.stderr:
                err_lines.append(line)
                if "stage train: started" in line:
                    break
            if proc.poll() is not None:
                return {"after_s": after_s, "error": "the job ended before training: " + "".join(err_lines[-3:])}
            time.sleep(after_s)
            children = [p for p in tree(proc.pid) if p != proc.pid]
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=600)
            took = time.monotonic() - sent
            try:
                report = json.loads(out)
            except json.JSONDecodeError:
                report = {}
            metrics = gateway.metrics_text()
            return {"after_s": after_s, "children_at_signal": len(children), "exit_s": round(took, 2),
                    "exit": proc.returncode, "outcome": report.get("outcome"), "error": report.get("error"),
                    "pushed": bool(FAILED.search(metrics)), "orphans": sum(_alive(p) for p in children)}
        finally:
            gateway.stop()
