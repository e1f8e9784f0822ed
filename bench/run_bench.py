"""`make bench`: what training and evaluation cost, stock rasa_nlu pipeline against nlu-ci's, and the whole
`nlu-ci run` against a bare scikit-learn fit of the same data.

Data: HWU64 (X. Liu et al., IWSDS 2019; CC BY 4.0; ../shared/datasets/hwu64, or --dataset DIR holding
train.json and test.json): seeded subsamples, the full training set ("full"), and synthetic scale-ups
(entity values swapped within their type, filler words added) to 25k, 50k and 100k; always evaluated on
the dataset's real test set.

Every measurement is repeated (--repeats, fewer when one row would exceed --budget seconds) and each
repeat runs in its own process (clean peak RSS, a hard time cap); the page gives min/median/max and the
1-minute load average around each row, and judges the targets on the median. Finished rows go to a
journal (var/bench/rows.jsonl) and are reused by a later run only while the fingerprint of the code,
config and data that produced them matches (bench/journal.py); the page labels them with the run and
commit they were measured under. Writes docs/bench/results.md, results.json and plot.png.

    .venv/bin/python bench/run_bench.py --fresh                       # everything, nothing reused
    .venv/bin/python bench/run_bench.py --quick                       # 1k only, 2 repeats, into var/bench/quick
    .venv/bin/python bench/run_bench.py --sizes 1000,full --ratio-sizes full,100000
    .venv/bin/python bench/run_bench.py --again docs/bench       # its cheaper rows again, page rewritten
    .venv/bin/python bench/run_bench.py --render docs/bench      # rewrite the page only, measure nothing
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import prepare_data, read_examples, synthesise  # noqa: E402, F401  (synthesise: tests)
from journal import Journal, code_hash, commit, fingerprint  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
OUT = ROOT / "docs" / "bench"
MEASURE = Path(__file__).resolve().parent / "measure.py"
FULL_SIZES = "1000,2500,5000,full,25000,50000,100000"
FULL_RATIO_SIZES = "full,50000,100000"
ORDER_SEEDS = 5


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def predicted_seconds(points: list[tuple[int, float]], n: int) -> float | None:
    """Power-law (log-log least squares) extrapolation of training seconds to size ``n``."""
    if len(points) < 2:
        return None
    xs, ys = [math.log(p[0]) for p in points], [math.log(max(p[1], 1e-3)) for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my + slope * (math.log(n) - mx))


def child(cmd: list[str], timeout: float) -> tuple[dict | None, float, str | None]:
    """Run ``cmd`` in a new process; (its last stdout line as JSON or None, wall seconds, error)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, f"killed at the {timeout:.0f} s cap"
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, wall, f"exit {proc.returncode}: " + (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]
    out = proc.stdout.strip()
    try:
        return json.loads(out), wall, None                       # `nlu-ci run --output json`: one document
    except json.JSONDecodeError:
        return json.loads(out.splitlines()[-1]), wall, None      # measure.py: its last line


class Bench:
    """One `make bench` run: measures the rows of a plan, reusing journal rows whose fingerprint matches."""

    def __init__(self, args, files: dict[int, Path], test: Path, full: int):
        self.args, self.files, self.test, self.full = args, files, test, full
        self.config = args.config.resolve()
        self.code = code_hash(ROOT)
        self.journal = Journal(args.work / "rows.jsonl")
        self.run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self.commit = commit(ROOT)
        self.rows: list[dict] = []

    def fingerprint(self, kind: str, name: str, size: int) -> str:
        inputs: list[Path | str] = [self.files[size], self.test]
        if kind in ("job", "order") or name == "nlu_ci_default":
            inputs.append(self.config)
        return fingerprint(self.code, kind, name, size, inputs)

    def _repeat(self, once, budget: float, repeats: int | None = None) -> tuple[list[dict], list[float], str | None]:
        """Call ``once()`` up to --repeats times, stopping early when another repeat would pass ``budget``."""
        samples, loads, t0 = [], [], time.perf_counter()
        for _ in range(repeats or self.args.repeats):
            loads.append(load1())
            sample, error = once()
            if error:
                loads.append(load1())
                return samples, loads, error
            samples.append(sample)
            spent = time.perf_counter() - t0
            if spent + spent / len(samples) > budget:
                break
        loads.append(load1())
        return samples, loads, None

    def _row(self, kind: str, name: str, size: int, measure, budget: float, repeats: int | None = None) -> dict:
        fp = self.fingerprint(kind, name, size)
        kept = self.journal.get(fp)
        if kept is not None and not self.args.fresh:
            log(f"{name} @ {size}: reused (measured {kept['measured_at']} at {kept['commit']}, fingerprint matches)")
            self.rows.append(kept)
            return kept
        log(f"{name} @ {size}: measuring")
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        samples, loads, error = self._repeat(measure, budget, repeats)
        if code_hash(ROOT) != self.code:
            raise SystemExit(f"bench: the measured code changed while {name} @ {size} ran; start again")
        if error:
            log(f"{name} @ {size}: {error}")
            row = {"kind": kind, "name": name, "size": size, "skipped": error, "run_id": self.run_id,
                   "load": loads}
            self.rows.append(row)
            return row
        row = {"kind": kind, "name": name, "size": size, "fingerprint": fp, "run_id": self.run_id,
               "commit": self.commit, "measured_at": started, "load": loads, "samples": samples}
        row.update(summarise(kind, samples))
        log(f"{name} @ {size}: {json.dumps({k: v for k, v in row.items() if k != 'samples'})}")
        self.journal.add(row)
        self.rows.append(row)
        return row

    def pipeline(self, name: str, sizes: list[int], cap: float | None = None) -> None:
        """Train and evaluate ``name`` at each size; with ``cap``, skip sizes a power law puts past it."""
        done: list[tuple[int, float]] = []
        for n in sizes:
            guess = predicted_seconds(done, n) if cap else None
            if guess is not None and guess > cap:
                log(f"{name} @ {n}: skipped, predicted {guess:.0f} s > cap {cap:.0f} s")
                self.rows.append({"kind": "pipeline", "name": name, "size": n, "run_id": self.run_id,
                                  "skipped": f"predicted {guess:.0f} s > {cap:.0f} s cap"})
                continue
            cmd = [sys.executable, str(MEASURE), "one", "--pipeline", name, "--train", str(self.files[n]),
                   "--test", str(self.test), "--config", str(self.config)]
            timeout = self.args.cap * 1.5 + 120

            def once(cmd=cmd, timeout=timeout):
                row, wall, error = child(cmd, timeout)
                return (dict(row, wall_s=round(wall, 2)) if row else None), error

            row = self._row("pipeline", name, n, once, self.args.budget)
            if "skipped" not in row:
                done.append((n, row["train_s"]["median"]))
            elif "cap" in row["skipped"]:
                done.append((n, timeout))

    def job(self, size: int, with_bare: bool) -> None:
        """`nlu-ci run` at ``size`` beside a bare scikit-learn fit (and a bare rasa_nlu train+evaluate)."""
        cli = Path(sys.executable).parent / "nlu-ci"
        train, timeout = str(self.files[size]), self.args.cap * 3

        def once():
            sample: dict = {"load_start": load1()}
            with_store = self.args.work / f"store-{self.run_id}"
            cmd = [str(cli), "run", "--data", train, "--test-data", str(self.test), "--config", str(self.config),
                   "--models-dir", str(with_store), "--kubernetes", "off", "--output", "json"]
            report, wall, error = child(cmd, timeout)
            subprocess.run(["rm", "-rf", str(with_store)], check=False)
            if error:
                return None, f"nlu-ci run: {error}"
            sample.update(run_s=round(wall, 2), outcome=report["outcome"], durations=report["durations"],
                          intent_f1=report["candidate"]["intent_f1"], entity_f1=report["candidate"]["entity_f1"])
            base = [sys.executable, str(MEASURE)]
            fit, wall, error = child([*base, "sklearn", "--train", train, "--test", str(self.test)], timeout)
            if error:
                return None, f"scikit-learn fit: {error}"
            sample.update(sklearn_s=round(wall, 2), sklearn_f1=fit["intent_f1"])
            fit, wall, error = child([*base, "sklearn-configured", "--train", train, "--test", str(self.test)],
                                     timeout)
            if error:
                return None, f"configured scikit-learn fit: {error}"
            sample.update(configured_s=round(wall, 2), configured_f1=fit["intent_f1"], configured=fit["config"])
            if with_bare:
                _, wall, error = child([*base, "bare", "--config", str(self.config), "--train", train,
                                        "--test", str(self.test)], timeout)
                if error:
                    return None, f"bare train+evaluate: {error}"
                sample["bare_s"] = round(wall, 2)
            return sample, None

        self._row("job", "nlu-ci run", size, once, self.args.budget)

    def orders(self, size: int, seeds: int = ORDER_SEEDS) -> None:
        """Entity F1 of the default config on ``seeds`` seeded shuffles of the training file: trained in the
        order given (rasa_nlu's Trainer) and through the job's training (canonical order)."""
        train, timeout = str(self.files[size]), self.args.cap * 3

        def once():
            sample: dict = {"load_start": load1(), "seeds": []}
            for seed in range(1, seeds + 1):
                got, wall, error = child([sys.executable, str(MEASURE), "order", "--seed", str(seed), "--config",
                                          str(self.config), "--train", train, "--test", str(self.test)], timeout)
                if error:
                    return None, f"order seed {seed}: {error}"
                sample["seeds"].append(dict(got, wall_s=round(wall, 2)))
            return sample, None

        self._row("order", "example order", size, once, float("inf"), repeats=1)


def summarise(kind: str, samples: list[dict]) -> dict:
    """min/median/max of the timed fields; the rest (F1, ECE) from the repeat with the median train time."""
    if kind == "pipeline":
        out = {k: spread([s[k] for s in samples]) for k in ("train_s", "eval_each_ups", "peak_rss_mb", "wall_s")}
        if all(s["eval_batch_ups"] is not None for s in samples):
            out["eval_batch_ups"] = spread([s["eval_batch_ups"] for s in samples])
        mid = sorted(samples, key=lambda s: s["train_s"])[(len(samples) - 1) // 2]
        out.update({k: mid[k] for k in ("train_examples", "intent_f1", "entity_f1", "intent_ece")})
        out["batch_equals_each"] = all(s["batch_equals_each"] is not False for s in samples)
        out["f1_varied"] = len({(s["intent_f1"], s["entity_f1"]) for s in samples}) > 1
        return out
    if kind == "order":
        seeds = samples[0]["seeds"]
        out = {f"{k}_entity_f1": spread([s[f"{k}_entity_f1"] for s in seeds]) for k in ("as_given", "job")}
        out["job_same_every_order"] = len({(s["job_entity_f1"], s["job_intent_f1"]) for s in seeds}) == 1
        return out
    out = {k: spread([s[k] for s in samples]) for k in ("run_s", "sklearn_s")}
    out["ratio"] = spread([round(s["run_s"] / s["sklearn_s"], 3) for s in samples])
    if all("configured_s" in s for s in samples):
        out["configured_s"] = spread([s["configured_s"] for s in samples])
        out["ratio_configured"] = spread([round(s["run_s"] / s["configured_s"], 3) for s in samples])
    if all("bare_s" in s for s in samples):
        out["bare_s"] = spread([s["bare_s"] for s in samples])
        out["overhead_pct"] = spread([round(100.0 * (s["run_s"] - s["bare_s"]) / s["bare_s"], 1) for s in samples])
    mid = sorted(samples, key=lambda s: s["run_s"])[(len(samples) - 1) // 2]
    out.update({k: mid[k] for k in ("outcome", "durations", "intent_f1", "entity_f1", "sklearn_f1")})
    out.update({k: mid[k] for k in ("configured_f1", "configured") if k in mid})
    return out


def row_cost(row: dict) -> float:
    """Seconds the repeats of a measured row took in all."""
    if row["kind"] == "pipeline":
        return sum(s["wall_s"] for s in row["samples"])
    if row["kind"] == "order":
        return sum(x["wall_s"] for s in row["samples"] for x in s["seeds"])
    return sum(s["run_s"] + s["sklearn_s"] + s.get("configured_s", 0.0) + s.get("bare_s", 0.0)
               for s in row["samples"])


def render(out: Path, journal: Journal) -> int:
    """Rewrite a page from its results.json, with what the journal holds of other runs of the same rows."""
    from bench_report import write_report  # noqa: PLC0415

    try:
        page = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"bench: cannot read {out / 'results.json'}: {exc}", file=sys.stderr)
        return 2
    others = dict(page.get("again", {}))
    for row in page["rows"]:
        if row.get("fingerprint") and journal.others(row):
            others[row["fingerprint"]] = journal.others(row)
    write_report(out, page["rows"], page["meta"], others)
    log(f"wrote {out / 'results.md'} ({len(others)} rows with another measurement of the same fingerprint)")
    return 0


def again(args) -> int:
    """Measure the cheaper rows of a page again (fresh, same fingerprint) and rewrite the page with both."""
    try:
        page = json.loads((args.again / "results.json").read_text(encoding="utf-8"))
        full = len(read_examples(args.dataset / "train.json"))
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench: --again {args.again}: {exc}", file=sys.stderr)
        return 2
    meta = page["meta"]
    picked = [r for r in page["rows"] if "skipped" not in r and row_cost(r) <= args.again_under]
    args.fresh, args.repeats, args.budget = True, meta["repeats"], meta["budget_s"]
    files = prepare_data(args.dataset, args.work, sorted({r["size"] for r in picked}))
    bench = Bench(args, files, args.dataset / "test.json", full)
    log(f"run {bench.run_id} at {bench.commit}: measuring again {len(picked)} of {len(page['rows'])} rows of "
        f"{args.again / 'results.md'} (those under {args.again_under:.0f} s)")
    changed = [r for r in picked if bench.fingerprint(r["kind"], r["name"], r["size"]) != r["fingerprint"]]
    if changed:
        print(f"bench: --again {args.again}: code, config or data changed since run {meta['run_id']} "
              f"({len(changed)} rows, e.g. {changed[0]['name']} @ {changed[0]['size']}); run `make bench` first",
              file=sys.stderr)
        return 2
    for r in picked:
        if r["kind"] == "pipeline":
            bench.pipeline(r["name"], [r["size"]])
        elif r["kind"] == "order":
            bench.orders(r["size"])
        else:
            bench.job(r["size"], with_bare="bare_s" in r)
    return render(args.again, bench.journal)


def earlier_rows(out: Path, measured: list[dict]) -> list[dict]:
    """The rows of ``out``'s page that this run did not measure, each marked ``kept`` (with --only)."""
    try:
        page = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    done = {(r["kind"], r["name"], r["size"]) for r in measured}
    return [dict(r, kept=True) for r in page["rows"] if (r["kind"], r["name"], r["size"]) not in done]


def parse_sizes(text: str, full: int) -> list[int]:
    return sorted({full if s.strip() == "full" else int(s) for s in text.split(",") if s.strip()})


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description="nlu-ci benchmark (see the module docstring)")
    ap.add_argument("--dataset", type=Path, default=Path(env("BENCH_DATASET", HWU64)),
                    help="directory with train.json and test.json [env BENCH_DATASET, HWU64]")
    ap.add_argument("--sizes", default=env("BENCH_SIZES"),
                    help=f"training sizes, 'full' = the whole training set [env BENCH_SIZES, {FULL_SIZES}]")
    ap.add_argument("--ratio-sizes", default=env("BENCH_RATIO_SIZES"),
                    help=f"sizes of `nlu-ci run` vs scikit-learn [env BENCH_RATIO_SIZES, {FULL_RATIO_SIZES}]")
    ap.add_argument("--quick", action="store_true", help="sizes 1000, ratio at 1000, 2 repeats (a CI smoke test)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per row [env BENCH_REPEATS, 3; --quick 2]")
    ap.add_argument("--budget", type=float, default=float(env("BENCH_BUDGET", 240)),
                    help="no further repeat of a row once it would pass this many seconds [env BENCH_BUDGET, 240]")
    ap.add_argument("--cap", type=float, default=float(env("BENCH_CAP", 1200)),
                    help="seconds one stock-pipeline training may take [env BENCH_CAP, 1200]")
    ap.add_argument("--config", type=Path, default=ROOT / "nlu_config.yml",
                    help="the default pipeline config to measure (and run `nlu-ci run` with)")
    ap.add_argument("--target", action="append", default=[], metavar="ID=VALUE",
                    help="override a target's threshold (ids in bench/bench_report.py TARGETS)")
    ap.add_argument("--fresh", action="store_true", help="measure every row again, reuse nothing from the journal")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench",
                    help="generated data and the journal rows.jsonl")
    ap.add_argument("--out", type=Path, default=None,
                    help="where the page goes [docs/bench; with --quick var/bench/quick, never the committed page]")
    ap.add_argument("--again", type=Path, metavar="DIR", default=None,
                    help="measure again the rows of DIR/results.json that took under --again-under seconds (same "
                         "code, config and data, else refused), then rewrite DIR's page with the comparison")
    ap.add_argument("--again-under", type=float, default=float(env("BENCH_AGAIN_UNDER", 300)),
                    help="with --again: rows whose repeats took longer in all are left out [env BENCH_AGAIN_UNDER, 300]")
    ap.add_argument("--only", choices=("job",), default=env("BENCH_ONLY"),
                    help="job: measure only the `nlu-ci run` rows (ratio sizes, with both bare fits) and the "
                         "example-order row; the page keeps its other rows from the run that measured them, "
                         "marked as such [env BENCH_ONLY]")
    ap.add_argument("--render", type=Path, metavar="DIR", default=None,
                    help="rewrite DIR/results.md and plot.png from DIR/results.json and the journal; measures nothing")
    args = ap.parse_args(argv)
    from bench_report import parse_targets, write_report  # noqa: PLC0415

    if args.render:
        return render(args.render, Journal(args.work / "rows.jsonl"))
    if args.again:
        return again(args)

    try:
        targets = parse_targets(args.target)
        full = len(read_examples(args.dataset / "train.json"))
        n_test = len(read_examples(args.dataset / "test.json"))
        sizes = parse_sizes(args.sizes or ("1000" if args.quick else FULL_SIZES), full)
        ratio_sizes = parse_sizes(args.ratio_sizes or ("1000" if args.quick else FULL_RATIO_SIZES), full)
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench: bad arguments or dataset: {exc}", file=sys.stderr)
        return 2
    args.out = args.out or (args.work / "quick" if args.quick else OUT)
    args.repeats = args.repeats or int(env("BENCH_REPEATS", 2 if args.quick else 3))
    started, load_start = time.time(), [round(x, 2) for x in os.getloadavg()]
    files = prepare_data(args.dataset, args.work, sorted(set(sizes) | set(ratio_sizes)))
    bench = Bench(args, files, args.dataset / "test.json", full)
    real, scaled = [n for n in sizes if n <= full], [n for n in sizes if n > full]
    log(f"run {bench.run_id} at {bench.commit}: sizes {sizes}, ratio sizes {ratio_sizes}, {args.repeats} repeats")
    # the targets first (stock pipeline, entities, real sizes, job overhead), then the scale-up
    if real and not args.only:
        bench.pipeline("classic_intent", real, cap=args.cap)
        bench.pipeline("nlu_ci_intent", real)
        bench.pipeline("nlu_ci_entities", real[-1:])
        bench.pipeline("classic_entities", real[-1:])
        bench.pipeline("nlu_ci_default", real)
    for n in ratio_sizes:
        if n <= full:
            bench.job(n, with_bare=True)
    if full in files:
        bench.orders(full)
    if scaled and not args.only:
        bench.pipeline("nlu_ci_intent", scaled)
        bench.pipeline("nlu_ci_default", scaled[-1:])
    for n in ratio_sizes:
        if n > full:
            bench.job(n, with_bare=False)
    meta = {"run_id": bench.run_id, "commit": bench.commit, "code_hash": bench.code,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "minutes": round((time.time() - started) / 60, 1), "argv": sys.argv[1:] if argv is None else argv,
            "sizes": sizes, "ratio_sizes": ratio_sizes, "not_run": sorted(
                set(parse_sizes(FULL_SIZES + "," + FULL_RATIO_SIZES, full)) - set(sizes) - set(ratio_sizes)),
            "dataset": args.dataset.name, "train_full": full, "test_examples": n_test,
            "repeats": args.repeats, "budget_s": args.budget, "cap_s": args.cap, "fresh": args.fresh, "only": args.only,
            "cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "load_start": load_start, "load_end": [round(x, 2) for x in os.getloadavg()],
            "targets": targets, "config": bench.config.read_text(encoding="utf-8")}
    if args.only:
        kept = earlier_rows(args.out, bench.rows)
        log(f"--only {args.only}: {len(kept)} rows kept from the page's earlier runs")
        bench.rows = kept + bench.rows
    others = {r["fingerprint"]: bench.journal.others(r) for r in bench.rows if r.get("fingerprint")}
    write_report(args.out, bench.rows, meta, others)
    log(f"wrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
