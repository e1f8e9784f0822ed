"""Benchmark: failed requests and latency of rasa_nlu's /parse while the served model is swapped under load.

Trains two models (A, B) with the real CLI, starts ``nlu-ci serve-models`` and ``nlu-ci serve`` on loopback,
runs ``--threads`` clients sending /parse back to back, and swaps the active model ``--swaps`` times with
``nlu-ci rollback <name>`` (A, B, A, ...). For each swap mode (``--swap atomic``: nlu-ci's load-then-switch;
``stock``: rasa_nlu 0.15's unload-then-load) it reports

* failed requests (connection errors, non-200, or an answer not from a ``model_*``), overall and during swaps;
* latency percentiles of requests started during a swap (from the ACTIVE change until 1 s after the first
  answer by the new model) and of the others;
* swap latency: from the ACTIVE change to the first answer by the new model (bounded by the pull interval plus
  the time to download and load the model).

    .venv/bin/python tests/serving/bench_swap.py [--swaps 6] [--threads 4] [--pull-interval 1] [--json FILE]
        [--out-dir docs/bench]     # also write the page serving_<pipeline>.md there (`make bench-serving`)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving_helpers import (  # noqa: E402
    SERVING_CONFIG,
    ActiveWatcher,
    Load,
    Store,
    percentiles,
    start_model_server,
    start_rasa,
    wait_until,
)

from support.data import FAST_CONFIG  # noqa: E402


def measure(store: Store, a: str, b: str, mode: str, args, work: Path) -> dict:
    store.rollback(a)
    model_server = start_model_server(store, work)
    rasa = start_rasa(store, model_server.url + "/models/default", work, args.pull_interval, swap=mode,
                      server=args.server)
    watcher = ActiveWatcher(store).start()
    load = Load(rasa.url, threads=args.threads).start()
    swaps, stuck = [], None
    try:
        time.sleep(args.settle)  # steady-state traffic before the first swap
        for i in range(args.swaps):
            target = b if i % 2 == 0 else a
            store.rollback(target)
            t = watcher.changed_to(target)
            try:
                first = wait_until(lambda: load.first_answer_by(target, t), args.pull_interval + 60,  # noqa: B023
                                   what=f"an answer by {target}")
            except AssertionError as err:  # reported, not hidden: the swap never reached the users
                stuck = f"swap {i + 1}: {err}; server log: {' | '.join(rasa.log_text().splitlines()[-3:])[-400:]}"
                break
            swaps.append((t, first, target))
            time.sleep(args.settle)
    finally:
        load.stop()
        watcher.stop()
        rasa.stop()
        model_server.stop()
    results = load.results
    in_swap = [any(t <= r[0] <= first + 1.0 for t, first, _ in swaps) for r in results]
    during = [r for r, inside in zip(results, in_swap, strict=True) if inside]
    outside = [r for r, inside in zip(results, in_swap, strict=True) if not inside]
    failed = load.failed()
    failed_set = set(failed)
    failed_during = [r for r in during if r in failed_set]
    return {
        "mode": mode, "server": args.server, "threads": args.threads, "pull_interval_s": args.pull_interval, "swaps": len(swaps),
        "requests": len(results), "failed": len(failed),
        "failed_during_swaps": len(failed_during),
        "failed_examples": sorted({f"{s} {str(m)[:80]}" for _, _, s, m in failed})[:5],
        "latency_during_swaps": percentiles([d for _, d, s, _ in during if s == 200]),
        "latency_steady": percentiles([d for _, d, s, _ in outside if s == 200]),
        "swap_latency_s": {"min": round(min(f - t for t, f, _ in swaps), 2),
                           "median": round(statistics.median(f - t for t, f, _ in swaps), 2),
                           "max": round(max(f - t for t, f, _ in swaps), 2)} if swaps else {},
        "stuck": stuck,
    }


def table(rows: list[dict]) -> str:
    out = ["| swap | requests | failed (during swaps) | p50 / p95 / p99 / max during swaps, ms | p50 / p99 steady, ms "
           "| swap latency min / median / max, s |", "|---|---|---|---|---|---|"]
    for r in rows:
        d, s, w = r["latency_during_swaps"], r["latency_steady"], r["swap_latency_s"]
        if r["stuck"]:
            out.append(f"| {r['mode']} ({r.get('server', 'rasa')}) | {r['requests']} | {r['failed']} ({r['failed_during_swaps']}) | "
                       f"**stuck after {r['swaps']} swaps**: {r['stuck'][:160]} | | |")
            continue
        out.append(f"| {r['mode']} ({r.get('server', 'rasa')}) | {r['requests']} | {r['failed']} ({r['failed_during_swaps']}) | "
                   f"{d.get('p50_ms')} / {d.get('p95_ms')} / {d.get('p99_ms')} / {d.get('max_ms')} | "
                   f"{s.get('p50_ms')} / {s.get('p99_ms')} | {w['min']} / {w['median']} / {w['max']} |")
    return "\n".join(out)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--swaps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--pull-interval", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of traffic before and after each swap")
    parser.add_argument("--modes", default="atomic,stock")
    parser.add_argument("--server", choices=["lean", "rasa"], default="lean", help="nlu-ci serve --server")
    parser.add_argument("--pipeline", choices=["linear", "classic"], default="linear",
                        help="linear: tokenizer + LinearIntentClassifier (loads in ms); classic: rasa_nlu's stock "
                             "pickled pipeline with CRF entities (loads slower: a wider window for the stock swap)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--out-dir", type=Path, help="also write the page serving_<pipeline>.md into this folder")
    args = parser.parse_args()
    started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    try:
        store = Store(work, SERVING_CONFIG if args.pipeline == "linear" else FAST_CONFIG)
        a = store.run(0)["candidate"]["model"]
        b = store.run(2)["candidate"]["model"]
        rows = []
        for mode in args.modes.split(","):
            rows.append(measure(store, a, b, mode, args, work))
            print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    head = (f"/parse ({args.pipeline} pipeline) under {args.threads} client threads while the active model is swapped "
            f"{args.swaps} times (pull interval {args.pull_interval:g} s):\n")
    print(head)
    print(table(rows))
    if args.out_dir:
        argv = " ".join(sys.argv[1:])
        page = [f"# Serving while the model is swapped ({args.pipeline} pipeline)", "",
                f"Written by one run of `tests/serving/bench_swap.py {argv}` (`make bench-serving`) at commit "
                f"`{commit()}`, started {started}, on {os.cpu_count()} CPUs; 1-minute load average "
                f"{load_start:.2f} at the start and {os.getloadavg()[0]:.2f} at the end (the machine may be shared: "
                "the load says how much to trust the latencies). What the columns mean: the docstring of "
                "`tests/serving/bench_swap.py`.", "", head, table(rows), ""]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / f"serving_{args.pipeline}.md").write_text("\n".join(page), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
