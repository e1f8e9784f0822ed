"""``nlu-ci serve`` /parse speed on HWU64's model: the lean server vs rasa_nlu's own, same run, same model.

Trains HWU64's model (X. Liu et al., IWSDS 2019; CC BY 4.0; 9,960 training examples) with the default config
(nlu_config.yml: intents and entities) by a real ``nlu-ci run`` into a scratch store, serves it with a real
``nlu-ci serve-models``, and starts two real ``nlu-ci serve`` on loopback pulling it: ``--server lean`` (its
``--workers`` from the CPU limit, or ``--workers``) and ``--server rasa``. Then Debian's ``wrk`` (4 connections,
2 threads, keep-alive) sends ``GET /parse?q=<text>`` cycling through HWU64's 1,076 test texts, ``--repeats`` runs
of ``--seconds`` per server, the two servers taking turns (load from other work falls on both). Reported per
server: requests/s, p50 and p99 latency (wrk's own distribution), medians over the runs with min-max, non-2xx
answers, and the load average before and after. wrk runs on the same 2 CPUs as the servers.

    .venv/bin/python bench/serve_speed.py [--data-dir DIR] [--repeats 5] [--seconds 10] [--md docs/bench/serving.md]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (rasa_nlu compat shims first, as eval_speed.py)

ROOT = Path(__file__).resolve().parents[1]
TARGET_RPS, TARGET_P99_MS = 2000.0, 20.0  # issue 23: >= 2,000 req/s with 4 clients, p99 under 20 ms
CONNECTIONS, THREADS = 4, 2
PROMOTE = "min_intent_f1: 0.0\nmin_improvement: off\nsignificance: off\nper_intent_max_drop: off\nentity_f1: off\n" \
          "must_pass: off\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(models: Path, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLU_CI_", "RASA_", "PUSHGATEWAY_", "SLACK_"))}
    env.update(NLU_CI_MODELS_DIR=str(models), NLU_CI_KUBERNETES="off", NLU_CI_LOG_LEVEL="WARNING", TMPDIR=str(tmp))
    return env


def cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "nlu_ci.cli", *args]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.3)
    raise SystemExit(f"{url}: not ready within {timeout:.0f}s")


def lua_script(texts: list[str], path: Path) -> None:
    targets = ",\n".join(json.dumps("/parse?q=" + urllib.parse.quote_plus(t)) for t in texts)
    path.write_text(f"local paths = {{\n{targets}\n}}\nlocal i = 0\n"
                    "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def run_wrk(url: str, script: Path, seconds: float) -> dict:
    out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"], "requests": total,
            "non_2xx": int(bad.group(1)) if bad else 0, "socket_errors": errors.group(1) if errors else ""}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a server process and its workers (what it spent, whatever the machine's load)."""
    import psutil

    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def measured(url: str, pid: int, script: Path, seconds: float) -> dict:
    before = cpu_seconds(pid)
    run = run_wrk(url, script, seconds)
    run["cpu_ms_per_request"] = (cpu_seconds(pid) - before) * 1000 / max(1, run["requests"])
    return run


def model_cpu(model_dir: Path, texts: list[str], repeats: int) -> dict:
    """CPU ms per text of the model alone in this process: rasa_nlu's ``Interpreter.parse`` (the per-text featurizer
    inside) and ``json_to_string`` of its answer, what every /parse of either server includes."""
    from rasa_nlu.model import Interpreter  # after nlu_ci.engine (imported at the top: the compat shims)
    from rasa_nlu.utils import json_to_string

    interpreter = Interpreter.load(str(model_dir))
    for t in texts[:100]:
        interpreter.parse(t)
    parse, dump = [], []
    for _ in range(repeats):
        t0 = time.process_time()
        answers = [interpreter.parse(t) for t in texts]
        t1 = time.process_time()
        for a in answers:
            json_to_string(a)
        t2 = time.process_time()
        parse.append((t1 - t0) * 1000 / len(texts))
        dump.append((t2 - t1) * 1000 / len(texts))
    return {"parse_ms": spread(parse), "json_ms": spread(dump)}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "hwu64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=0, help="lean server's --workers (0: the CPU limit)")
    ap.add_argument("--md", type=Path, help="write the page here (docs/bench/serving.md)")
    args = ap.parse_args()
    data_dir = args.data_dir if args.data_dir.exists() else Path("/work/shared/datasets/hwu64")
    texts = [e["text"] for e in json.loads((data_dir / "test.json").read_text())["rasa_nlu_data"]["common_examples"]]
    with tempfile.TemporaryDirectory(prefix="serve-speed-") as tmp_s:
        tmp = Path(tmp_s)
        env = env_for(tmp / "models", tmp)
        (tmp / "promote.yml").write_text(PROMOTE)
        t0 = time.monotonic()
        res = subprocess.run(cli(["run", "--json", "--data", str(data_dir / "train.json"), "--test-data",
                                  str(data_dir / "test.json"), "--policy", str(tmp / "promote.yml"), "--config",
                                  str(ROOT / "nlu_config.yml")]), env=env, capture_output=True, text=True, cwd=ROOT)
        if res.returncode != 0:
            raise SystemExit(f"nlu-ci run failed ({res.returncode}): {res.stderr[-1000:]}")
        train_s = time.monotonic() - t0
        model = json.loads(res.stdout)["candidate"]["model"]
        alone = model_cpu(tmp / "models" / "default" / model, texts, args.repeats)
        procs: list[subprocess.Popen] = []
        try:
            mport = free_port()
            procs.append(subprocess.Popen(cli(["serve-models", "--host", "127.0.0.1", "--port", str(mport),
                                               "--zip-cache", str(tmp / "zips")]), env=env, cwd=ROOT))
            wait_ready(f"http://127.0.0.1:{mport}/health", procs[-1])
            urls, pids = {}, {}
            for kind in ("lean", "rasa"):
                port = free_port()
                extra = ["--workers", str(args.workers)] if kind == "lean" and args.workers else []
                procs.append(subprocess.Popen(cli(["serve", "--server", kind, "--host", "127.0.0.1", "--port",
                                                   str(port), "--model-url", f"http://127.0.0.1:{mport}/models/default",
                                                   "--pull-interval", "30", *extra]), env=env, cwd=ROOT))
                urls[kind], pids[kind] = f"http://127.0.0.1:{port}", procs[-1].pid
                wait_ready(urls[kind] + "/ready", procs[-1])
            script = tmp / "parse.lua"
            lua_script(texts, script)
            for kind in urls:  # warm-up: every text once through each server's code paths
                run_wrk(urls[kind], script, 2)
            load_before = os.getloadavg()
            runs: dict[str, list[dict]] = {"lean": [], "rasa": []}
            for _ in range(args.repeats):
                for kind in urls:
                    runs[kind].append(measured(urls[kind], pids[kind], script, args.seconds))
            load_after = os.getloadavg()
            workers = json.loads(urllib.request.urlopen(urls["lean"] + "/status", timeout=5).read())
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=30)
    result = {"model": model, "train_s": round(train_s, 1), "texts": len(texts), "repeats": args.repeats,
              "seconds": args.seconds, "connections": CONNECTIONS, "threads": THREADS, "cpus": os.cpu_count(),
              "load_before": load_before, "load_after": load_after, "python": platform.python_version(),
              "lean_workers": args.workers or _cpu_workers(), "served": workers["available_projects"]["default"],
              "model_alone": alone, "runs": runs, "summary": {k: {m: spread([r[m] for r in v]) for m in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")}
                                        for k, v in runs.items()}}
    print(json.dumps(result, indent=2))
    if args.md:
        args.md.write_text(page(result))
        args.md.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def _cpu_workers() -> int:
    from nlu_ci import cpus

    return cpus.workers()


def page(r: dict) -> str:
    s = r["summary"]
    lean, rasa = s["lean"], s["rasa"]

    def cell(d: dict, digits: int = 0) -> str:
        return f"{d['median']:,.{digits}f} ({d['min']:,.{digits}f}-{d['max']:,.{digits}f})"

    bad = {k: sum(x["non_2xx"] for x in v) for k, v in r["runs"].items()}
    rps_ok = lean["rps"]["median"] >= TARGET_RPS
    p99_ok = lean["p99_ms"]["median"] < TARGET_P99_MS
    lines = [
        "# `nlu-ci serve` /parse speed (`make bench-serve`, bench/serve_speed.py)", "",
        f"HWU64's model ({r['model']}, the default config nlu_config.yml: intents and entities, trained in this run "
        f"in {r['train_s']:.0f} s) served by `nlu-ci serve --server lean` ({r['lean_workers']} workers) and "
        f"`--server rasa` (rasa_nlu 0.15's own Twisted server behind nlu-ci's guard) on loopback. Debian's `wrk`, "
        f"{r['connections']} connections, {r['threads']} threads, keep-alive, `GET /parse?q=` cycling through "
        f"HWU64's {r['texts']:,} test texts; {r['repeats']} runs of {r['seconds']:g} s per server, the servers "
        f"taking turns; medians over the runs (min-max in brackets); {r['cpus']} CPUs shared by wrk, both "
        f"servers and other work; load average {r['load_before'][0]:.2f} before, {r['load_after'][0]:.2f} after; "
        f"Python {r['python']}.", "",
        "| server | req/s | p50 ms | p99 ms | CPU ms per request | non-2xx |", "|---|---:|---:|---:|---:|---:|",
        f"| lean | {cell(lean['rps'])} | {cell(lean['p50_ms'], 2)} | {cell(lean['p99_ms'], 2)} | "
        f"{cell(lean['cpu_ms_per_request'], 2)} | {bad['lean']} |",
        f"| rasa | {cell(rasa['rps'])} | {cell(rasa['p50_ms'], 2)} | {cell(rasa['p99_ms'], 2)} | "
        f"{cell(rasa['cpu_ms_per_request'], 2)} | {bad['rasa']} |",
        "",
        f"Lean vs rasa: **{lean['rps']['median'] / rasa['rps']['median']:.1f}x** the requests per second, "
        f"**{rasa['cpu_ms_per_request']['median'] / lean['cpu_ms_per_request']['median']:.1f}x** fewer CPU "
        "milliseconds per request. *CPU ms per request*: user + system time of the server's processes (supervisor "
        "and workers) during a run, over the requests it answered; it depends far less on other work on the "
        "machine than req/s does (the req/s of a run are what the CPUs left to the servers allowed).", "",
        f"The model alone, in one process over the same texts (`Interpreter.parse`, then rasa_nlu's "
        f"`json_to_string` of the answer, which both servers send): {cell(r['model_alone']['parse_ms'], 2)} + "
        f"{cell(r['model_alone']['json_ms'], 2)} CPU ms per text. What a server adds is the rest of its CPU ms "
        "per request.", "",
        f"At {lean['cpu_ms_per_request']['median']:.2f} CPU ms per request, {r['lean_workers']} CPUs free for the "
        f"lean server alone would answer at most {r['lean_workers'] * 1000 / lean['cpu_ms_per_request']['median']:,.0f}"
        " req/s (less what wrk takes).", "",
        f"Targets (issue 23): >= {TARGET_RPS:,.0f} req/s with 4 clients: **{'met' if rps_ok else 'missed'}** "
        f"({lean['rps']['median']:,.0f}); p99 < {TARGET_P99_MS:g} ms: **{'met' if p99_ok else 'missed'}** "
        f"({lean['p99_ms']['median']:.2f} ms).", "",
        "The answers of both servers are the same, byte for byte (tests/serving/test_server_contract.py). The raw "
        "runs are in serving.json beside this page.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
