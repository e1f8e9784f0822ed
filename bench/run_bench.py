"""`make bench`: training and evaluation cost of the stock rasa_nlu pipeline against nlu-ci's, side by side.

Data: HWU64 (X. Liu et al., IWSDS 2019; CC BY 4.0; ../shared/datasets/hwu64): seeded subsamples of 1k,
2.5k and 5k training examples, the full 9,960, and synthetic scale-ups (entity values swapped within
their type, filler words added) to 25k, 50k and 100k; always evaluated on HWU64's real test set (1,076).

Every measurement runs in its own Python process (clean peak RSS, a hard time cap). The stock pipeline
is skipped at sizes where a power law fitted to its smaller sizes predicts more than --cap seconds.
Writes docs/bench/results.md, docs/bench/results.json and docs/bench/plot.png.

    .venv/bin/python bench/run_bench.py                     # everything (about 30-40 minutes here)
    .venv/bin/python bench/run_bench.py --quick             # 1k and 2.5k only, a smoke test
    .venv/bin/python bench/run_bench.py one --pipeline nlu_ci_intent --train T.json --test T.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (rasa_nlu compat shims, before any rasa_nlu import below)

ROOT = Path(__file__).resolve().parents[1]
HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
OUT = ROOT / "docs" / "bench"

PIPELINES: dict[str, list[dict]] = {
    # (a) rasa_nlu's own components
    "classic_intent": [{"name": "WhitespaceTokenizer"}, {"name": "CountVectorsFeaturizer"},
                       {"name": "SklearnIntentClassifier"}],
    "classic_entities": [{"name": "WhitespaceTokenizer"}, {"name": "CRFEntityExtractor"}],
    # (b) nlu-ci's components
    "nlu_ci_intent": [{"name": "nlu_ci.components.LinearIntentClassifier"}],
    "nlu_ci_entities": [{"name": "WhitespaceTokenizer"}, {"name": "nlu_ci.components.LeanCRFEntityExtractor"}],
    "nlu_ci_default": "config",              # the default config file, --config (intents + entities)
}
REAL_SIZES = [1000, 2500, 5000, 9960]
SYNTHETIC_SIZES = [25000, 50000, 100000]
FILLERS_BEFORE = ["please ", "hey ", "ok ", "so ", "can you ", "i need you to ", "quick question "]
FILLERS_AFTER = [" please", " thanks", " now", " thank you", " for me", " ok"]


# -- one measurement (child process) -----------------------------------------------------------------

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def best_of(fn, repeats: int = 3, budget_s: float = 20.0):
    """(result, fastest seconds) of up to ``repeats`` calls, stopping once ``budget_s`` is spent."""
    best, spent, result = float("inf"), 0.0, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        took = time.perf_counter() - t0
        best, spent = min(best, took), spent + took
        if spent > budget_s:
            break
    return result, best


def measure(pipeline: str, train_path: str, test_path: str, each: bool = True, config: str | None = None) -> dict:
    from rasa_nlu import config as rasa_config
    from rasa_nlu.model import Trainer
    from rasa_nlu.training_data import load_data

    from nlu_ci.components.calibration import expected_calibration_error
    from nlu_ci.engine.batch import predict_batch
    from nlu_ci.engine.predict import load_model, predict_each
    from nlu_ci.evaluation import evaluate

    spec = PIPELINES[pipeline]
    if isinstance(spec, str):
        cfg = rasa_config.load(config or str(ROOT / "nlu_config.yml"))
    else:
        cfg = rasa_config.RasaNLUModelConfig({"language": "en", "pipeline": [dict(c) for c in spec]})
    train = load_data(train_path)
    with open(test_path, encoding="utf-8") as fh:
        test = json.load(fh)["rasa_nlu_data"]["common_examples"]
    texts = [e["text"] for e in test]
    trainer = Trainer(cfg)
    t0 = time.perf_counter()
    trainer.train(train)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        interpreter = load_model(trainer.persist(tmp, fixed_model_name="m"))
    batched, batch_s = best_of(lambda: predict_batch(interpreter, texts))
    row = {"pipeline": pipeline, "train_examples": len(train.training_examples), "train_s": round(train_s, 3),
           "eval_batch_ups": round(len(texts) / batch_s, 1) if batched is not None else None}
    predictions = batched
    if each or batched is None:
        predictions, each_s = best_of(lambda: predict_each(interpreter, texts))
        row["eval_each_ups"] = round(len(texts) / each_s, 1)
        if batched is not None:
            row["batch_equals_each"] = batched == predictions
    provides = {p for c in interpreter.pipeline for p in (c.provides or [])}
    result = evaluate(test, predictions)
    row["intent_f1"] = round(result.intent_f1, 4) if "intent" in provides else None
    row["entity_f1"] = round(result.entity_f1, 4) if "entities" in provides and result.entity_f1 is not None else None
    if "intent" in provides:
        row["intent_ece"] = round(expected_calibration_error([p["confidence"] for p in predictions],
                                                             [u["correct"] for u in result.utterances]), 4)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return row


def bare(config: str, train_path: str, test_path: str) -> dict:
    """What `nlu-ci run` must do at the least: load data, train, persist, load, predict, evaluate."""
    t0 = time.perf_counter()
    from rasa_nlu import config as rasa_config
    from rasa_nlu.model import Trainer
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine.predict import load_model, predict
    from nlu_ci.evaluation import evaluate

    trainer = Trainer(rasa_config.load(config))
    trainer.train(load_data(train_path))
    with tempfile.TemporaryDirectory() as tmp:
        interpreter = load_model(trainer.persist(tmp, fixed_model_name="m"))
        with open(test_path, encoding="utf-8") as fh:
            test = json.load(fh)["rasa_nlu_data"]["common_examples"]
        result = evaluate(test, predict(interpreter, [e["text"] for e in test]))
    return {"in_process_s": round(time.perf_counter() - t0, 3), "intent_f1": round(result.intent_f1, 4)}


# -- data -------------------------------------------------------------------------------------------

def write_examples(path: Path, examples: list[dict]) -> Path:
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def synthesise(examples: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` examples: the originals, then variants with entity values swapped and filler words added."""
    rng = random.Random(seed)
    values: dict[str, list[str]] = {}
    for e in examples:
        for ent in e.get("entities", []):
            values.setdefault(ent["entity"], []).append(e["text"][ent["start"]:ent["end"]])
    out = list(examples)
    while len(out) < n:
        src = rng.choice(examples)
        text, ents, cursor, pieces = src["text"], [], 0, []
        before = rng.choice(FILLERS_BEFORE) if rng.random() < 0.5 else ""
        pieces.append(before)
        offset = len(before)
        for ent in sorted(src.get("entities", []), key=lambda x: x["start"]):
            if ent["start"] < cursor:
                continue
            pieces.append(text[cursor:ent["start"]])
            offset += ent["start"] - cursor
            value = rng.choice(values[ent["entity"]])
            ents.append({"start": offset, "end": offset + len(value), "value": value, "entity": ent["entity"]})
            pieces.append(value)
            offset += len(value)
            cursor = ent["end"]
        pieces.append(text[cursor:])
        pieces.append(rng.choice(FILLERS_AFTER) if rng.random() < 0.5 else "")
        out.append({"text": "".join(pieces), "intent": src["intent"], "entities": ents})
    return out


def prepare_data(work: Path, sizes: list[int]) -> dict[int, Path]:
    full = json.loads((HWU64 / "train.json").read_text(encoding="utf-8"))["rasa_nlu_data"]["common_examples"]
    shuffled = full[:]
    random.Random(42).shuffle(shuffled)
    files = {}
    for n in sizes:
        path = work / f"train_{n}.json"
        if not path.exists():
            rows = shuffled[:n] if n <= len(full) else synthesise(full, n)
            write_examples(path, rows)
        files[n] = path
    return files


# -- the driver -------------------------------------------------------------------------------------

def child(args: list[str], timeout: float) -> tuple[dict | None, float, str | None]:
    """Run ``run_bench.py <args>`` in a new process; (JSON row or None, wall seconds, error)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0, f"killed at the {timeout:.0f} s cap"
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, wall, (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, None


def predicted_seconds(points: list[tuple[int, float]], n: int) -> float | None:
    """Power-law (log-log least squares) extrapolation of training seconds to size ``n``."""
    if len(points) < 2:
        return None
    xs, ys = [math.log(p[0]) for p in points], [math.log(max(p[1], 1e-3)) for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my + slope * (math.log(n) - mx))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _journal(journal: Path, row: dict) -> None:
    with journal.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def run_matrix(files: dict[int, Path], test: Path, cap: float, plan: list[tuple[str, list[int]]],
               config: Path, journal: Path) -> list[dict]:
    """Measure every (pipeline, size) of ``plan``; rows already in ``journal`` (JSON lines) are reused."""
    kept = {}
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            kept[(row["pipeline"], row["size"])] = row
    rows = []
    for pipeline, sizes in plan:
        done: list[tuple[int, float]] = []
        for n in sizes:
            if (pipeline, n) in kept and "skipped" not in kept[(pipeline, n)]:
                row = dict(kept[(pipeline, n)], reused=True)
                log(f"{pipeline} @ {n}: reused from {journal.name}")
                rows.append(row)
                done.append((n, row["train_s"]))
                continue
            guess = predicted_seconds(done, n)
            if guess is not None and guess > cap:
                log(f"{pipeline} @ {n}: skipped, predicted {guess:.0f} s > cap {cap:.0f} s")
                rows.append({"pipeline": pipeline, "size": n, "skipped": f"predicted {guess:.0f} s > {cap:.0f} s cap"})
                _journal(journal, rows[-1])
                continue
            log(f"{pipeline} @ {n}: running")
            row, wall, error = child(["one", "--pipeline", pipeline, "--train", str(files[n]), "--test", str(test),
                                      "--config", str(config)], timeout=cap * 1.5 + 120)
            if row is None:
                log(f"{pipeline} @ {n}: {error}")
                rows.append({"pipeline": pipeline, "size": n, "skipped": error})
                _journal(journal, rows[-1])
                if "cap" in (error or ""):
                    done.append((n, cap * 1.5))
                continue
            row.update(size=n, wall_s=round(wall, 2))
            log(f"{pipeline} @ {n}: {row}")
            rows.append(row)
            _journal(journal, row)
            done.append((n, row["train_s"]))
    return rows


def overhead(train: Path, test: Path, repeats: int, config: Path) -> dict:
    """Wall seconds of `nlu-ci run` (default config, fresh store) against a bare train+evaluate process."""
    cli = Path(sys.executable).parent / "nlu-ci"
    runs, bares, report = [], [], None
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as store:
            t0 = time.perf_counter()
            proc = subprocess.run([str(cli), "run", "--data", str(train), "--test-data", str(test),
                                   "--config", str(config), "--models-dir", store,
                                   "--kubernetes", "off", "--output", "json"],
                                  capture_output=True, text=True, cwd=ROOT, timeout=1800)
            runs.append(time.perf_counter() - t0)
            if proc.returncode not in (0,):
                raise SystemExit(f"nlu-ci run failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
            report = json.loads(proc.stdout)
        row, wall, error = child(["bare", "--config", str(config), "--train", str(train),
                                  "--test", str(test)], timeout=1800)
        if error:
            raise SystemExit(f"bare train+evaluate failed: {error}")
        bares.append(wall)
        log(f"nlu-ci run {runs[-1]:.1f} s, bare train+evaluate {wall:.1f} s")
    best_run, best_bare = min(runs), min(bares)
    return {"run_s": [round(x, 2) for x in runs], "bare_s": [round(x, 2) for x in bares],
            "best_run_s": round(best_run, 2), "best_bare_s": round(best_bare, 2),
            "overhead_pct": round(100.0 * (best_run - best_bare) / best_bare, 1),
            "outcome": report["outcome"], "durations": report["durations"],
            "intent_f1": report["candidate"]["intent_f1"], "entity_f1": report["candidate"]["entity_f1"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="nlu-ci benchmark (see the module docstring)")
    sub = ap.add_subparsers(dest="cmd")
    one = sub.add_parser("one", help="one measurement in this process (prints a JSON row)")
    one.add_argument("--pipeline", required=True, choices=sorted(PIPELINES))
    one.add_argument("--train", required=True)
    one.add_argument("--test", required=True)
    one.add_argument("--no-each", action="store_true", help="skip the per-message parse timing")
    one.add_argument("--config", help="config file of the nlu_ci_default pipeline")
    b = sub.add_parser("bare", help="bare train + evaluate of a config (prints a JSON row)")
    b.add_argument("--config", required=True)
    b.add_argument("--train", required=True)
    b.add_argument("--test", required=True)
    ap.add_argument("--config", type=Path, default=ROOT / "nlu_config.yml",
                    help="the default pipeline config to measure (and run `nlu-ci run` with)")
    ap.add_argument("--cap", type=float, default=float(os.environ.get("BENCH_CAP", 1200)),
                    help="seconds one stock-pipeline training may take [env BENCH_CAP, 1200]")
    ap.add_argument("--quick", action="store_true", help="1k and 2.5k only, no scale-up (smoke test)")
    ap.add_argument("--report-only", action="store_true", help="write the report from rows.jsonl, measure nothing")
    ap.add_argument("--repeats", type=int, default=2, help="nlu-ci run / bare pairs for the overhead")
    ap.add_argument("--work", type=Path, default=ROOT / "var" / "bench",
                    help="generated data, and rows.jsonl: finished measurements, reused by the next run "
                         "(delete it to measure everything again)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.cmd == "one":
        print(json.dumps(measure(args.pipeline, args.train, args.test, each=not args.no_each, config=args.config)))
        return 0
    if args.cmd == "bare":
        print(json.dumps(bare(args.config, args.train, args.test)))
        return 0

    from bench_report import write_report  # noqa: PLC0415  (bench/ is on sys.path when run as a script)

    real = [1000, 2500] if args.quick else REAL_SIZES
    scaled = [] if args.quick else SYNTHETIC_SIZES
    args.work.mkdir(parents=True, exist_ok=True)
    files = prepare_data(args.work, real + scaled)
    test = HWU64 / "test.json"
    config = args.config.resolve()
    journal = args.work / "rows.jsonl"
    # the targets first (stock pipeline, entities, real sizes, job overhead), then the scale-up
    main_plan = [("classic_intent", real), ("nlu_ci_intent", real), ("nlu_ci_entities", [real[-1]]),
                 ("classic_entities", [real[-1]]), ("nlu_ci_default", real)]
    scale_plan = [("nlu_ci_intent", scaled), ("nlu_ci_default", scaled[-1:])]
    started = time.time()
    rows = [] if args.report_only else run_matrix(files, test, args.cap, main_plan, config, journal)
    over_file = args.work / "overhead.json"
    if over_file.exists():
        over = json.loads(over_file.read_text(encoding="utf-8"))
        log(f"overhead reused from {over_file.name}")
    elif args.report_only:
        over = {}
    else:
        over = overhead(files[real[-1]], test, args.repeats, config)
        over_file.write_text(json.dumps(over), encoding="utf-8")
    if not args.report_only:
        rows += run_matrix(files, test, args.cap, scale_plan, config, journal)
    else:
        last = {}
        for line in journal.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            last[(row["pipeline"], row["size"])] = row
        rows = list(last.values())
    meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "minutes": round((time.time() - started) / 60, 1), "cap_s": args.cap, "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(),
            "load_avg_at_end": [round(x, 2) for x in os.getloadavg()], "quick": args.quick,
            "config": config.read_text(encoding="utf-8")}
    write_report(args.out, rows, over, meta)
    log(f"wrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
