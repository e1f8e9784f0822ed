"""The cv config search on HWU64, serial vs parallel: ``nlu-ci run --cv-folds 5`` with 3 ``--config``.

HWU64 (X. Liu et al., IWSDS 2019; CC BY 4.0): train.json (9,960) as ``--data``, test.json (1,076) as
``--test-data``, so the search runs on all 9,960 training examples: 5 folds x 3 configs = 15 fits of ~7,970
examples each. The three configs: the shipped nlu_config.yml, the same with char n-grams 2-5, the same with
C 1.0 (the intent classifier's options; the lean CRF as shipped). Each repeat is one whole ``nlu-ci run
--dry-run`` process in a fresh store, serial (``NLU_CI_WORKERS=1``: one fit at a time, calibration folds
too) and parallel (``NLU_CI_WORKERS=2``: two (config, fold) tasks at a time) taking turns, so load from other
work on the machine falls on both. Timed: the report's ``cv_search.seconds`` (the search alone) and the
whole process. Checked: both choose the same config with the same fold scores (``scores_digest``).
Medians with min-max, the load average before and after each run.

    .venv/bin/python bench/cv_speed.py [--data-dir DIR] [--repeats 3] [--folds 5] [--md docs/bench/cv.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.6  # issue 23: parallel at most 0.6x serial on 2 cores
VARIANTS = {
    "shipped": {},
    "char2-5": {"char_ngrams": [2, 5]},
    "C1": {"C": 1.0},
}


def configs(where: Path) -> list[Path]:
    import yaml

    base = yaml.safe_load((ROOT / "nlu_config.yml").read_text())
    paths = []
    for name, options in VARIANTS.items():
        cfg = json.loads(json.dumps(base))
        for comp in cfg["pipeline"]:
            if comp["name"].endswith("LinearIntentClassifier"):
                comp.update(options)
        path = where / f"{name}.yml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        paths.append(path)
    return paths


def one_run(data_dir: Path, paths: list[Path], folds: int, workers: int, where: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLU_CI_")}
    env.update(NLU_CI_MODELS_DIR=str(where / "models"), NLU_CI_KUBERNETES="off", NLU_CI_WORKERS=str(workers),
               NLU_CI_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", ""))
    args = [sys.executable, "-m", "nlu_ci.cli", "run", "--dry-run", "--json", "--cv-folds", str(folds),
            "--data", str(data_dir / "train.json"), "--test-data", str(data_dir / "test.json")]
    for p in paths:
        args += ["--config", str(p)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, cwd=str(ROOT), timeout=3600)
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"nlu-ci run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    cv = report["cv_search"]
    return {"workers": workers, "cv_seconds": cv["seconds"], "total_seconds": round(total, 3),
            "chosen": Path(cv["chosen"]).stem, "scores_digest": cv["scores_digest"],
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
            "configs": {Path(c["config"]).stem: {"intent_f1": c["intent_f1"], "entity_f1": c["entity_f1"]}
                        for c in cv["configs"]},
            "candidate_intent_f1": report["candidate"]["intent_f1"],
            "candidate_entity_f1": report["candidate"]["entity_f1"]}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def markdown(result: dict) -> str:
    s, p = result["serial"], result["parallel"]
    ratio = result["ratio"]
    verdict = "met" if ratio <= TARGET else "**missed**"
    lines = [
        "# Cross-validated config search: serial vs parallel (`make bench-cv`)", "",
        f"`nlu-ci run --cv-folds {result['folds']}` with {len(VARIANTS)} `--config` ({', '.join(VARIANTS)}: the "
        "shipped nlu_config.yml, char n-grams 2-5, C 1.0) on HWU64's 9,960 training examples (test.json as "
        f"`--test-data`): {result['folds'] * len(VARIANTS)} fits of about 7,970 examples. One `nlu-ci run --dry-run` "
        "process per repeat, serial (`NLU_CI_WORKERS=1`) and parallel (`NLU_CI_WORKERS=2`) taking turns. "
        f"Measured {result['when']} on {result['machine']} ({result['cpus']} CPUs, shared with other work), "
        f"{result['repeats']} repeat(s) each; command: `{result['command']}`"
        + (" (the page made from the rows `make bench-cv` appends as each run ends; whole pairs only)"
           if "--render" in result["command"] else "") + ".", "",
        "| | cv_search seconds: median (min-max) | whole run seconds: median (min-max) | load average 1 min (before/after, each run) |",
        "|---|---|---|---|",
    ]
    for name, side in (("serial (1 worker)", s), ("parallel (2 workers)", p)):
        lines.append(f"| {name} | {side['cv']['median']:.1f} ({side['cv']['min']:.1f}-{side['cv']['max']:.1f}) | "
                     f"{side['total']['median']:.1f} ({side['total']['min']:.1f}-{side['total']['max']:.1f}) | "
                     + ", ".join(f"{r['load_before']:.1f}/{r['load_after']:.1f}" for r in side["runs"]) + " |")
    lines += ["", f"**parallel / serial (medians of cv_search seconds): {ratio:.3f}x** — target at most {TARGET}x: "
              f"{verdict}.", "",
              f"Same choice either way: **{'yes' if result['same_choice'] else 'NO'}** (chosen: "
              f"{', '.join(sorted(result['chosen']))}; fold scores digest "
              f"{', '.join(sorted(result['digests']))}).", "",
              "| config | intent F1 mean (std, min-max) | entity F1 mean (std, min-max) |", "|---|---|---|"]
    for name, c in result["serial"]["runs"][0]["configs"].items():
        i, e = c["intent_f1"], c["entity_f1"]
        ent = f"{e['mean']:.4f} ({e['std']:.4f}, {e['min']:.4f}-{e['max']:.4f})" if e else "-"
        lines.append(f"| {name} | {i['mean']:.4f} ({i['std']:.4f}, {i['min']:.4f}-{i['max']:.4f}) | {ent} |")
    lines += ["", "The chosen config, trained on all 9,960 and evaluated on test.json: intent F1 "
              f"{s['runs'][0]['candidate_intent_f1']:.4f}, entity F1 {s['runs'][0]['candidate_entity_f1']:.4f}.", "",
              "With 2 workers each (config, fold) task is one process and its own calibration folds run in it; "
              "serially every fit (and each calibration fold) runs one after another. The machine's other work "
              "takes CPU from both sides: a load average above 2 on 2 CPUs means the parallel side had less than "
              "two cores to itself.", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    return "\n".join(lines)


def _without_note(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--note":
            skip = True
        elif not a.startswith("--note="):
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("HWU64_DIR", "/work/shared/datasets/hwu64")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--note", default=None, help="a paragraph for the page (what was unusual about this run)")
    ap.add_argument("--rows", type=Path, default=None, help="append each run's row to this JSON-lines file as it ends")
    ap.add_argument("--render", type=Path, default=None,
                    help="measure nothing: the page from the rows of an earlier --rows file (whole pairs only)")
    args = ap.parse_args(argv)
    runs: dict[str, list[dict]] = {"serial": [], "parallel": []}
    if args.render:
        rows = [json.loads(line) for line in args.render.read_text().splitlines() if line.strip()]
        for row in rows:
            runs["serial" if row["workers"] == 1 else "parallel"].append(row)
        pairs = min(len(runs["serial"]), len(runs["parallel"]))
        runs = {k: v[:pairs] for k, v in runs.items()}
        args.repeats = pairs
    with tempfile.TemporaryDirectory(prefix="nlu-ci-bench-cv-") as tmp:
        paths = configs(Path(tmp))
        for r in range(0 if args.render else args.repeats):
            for name, workers in (("serial", 1), ("parallel", 2)):
                where = Path(tmp) / f"{name}-{r}"
                where.mkdir()
                row = one_run(args.data_dir, paths, args.folds, workers, where)
                runs[name].append(row)
                if args.rows:
                    with args.rows.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(row) + "\n")
                print(f"{name} {r}: cv {row['cv_seconds']:.1f} s, run {row['total_seconds']:.1f} s, chosen "
                      f"{row['chosen']}, load {row['load_before']}/{row['load_after']}", file=sys.stderr)
    measured = time.gmtime(args.render.stat().st_mtime) if args.render else time.gmtime()
    result = {"folds": args.folds, "repeats": args.repeats, "when": time.strftime("%Y-%m-%d %H:%M UTC", measured),
              "machine": platform.machine(), "cpus": os.cpu_count(),
              "command": " ".join(["bench/cv_speed.py", *_without_note(argv or sys.argv[1:])])}
    for name, rows in runs.items():
        result[name] = {"runs": rows, "cv": spread([r["cv_seconds"] for r in rows]),
                        "total": spread([r["total_seconds"] for r in rows])}
    result["ratio"] = result["parallel"]["cv"]["median"] / result["serial"]["cv"]["median"]
    result["note"] = args.note
    result["chosen"] = sorted({r["chosen"] for rows in runs.values() for r in rows})
    result["digests"] = sorted({r["scores_digest"] for rows in runs.values() for r in rows})
    result["same_choice"] = len(result["chosen"]) == 1 and len(result["digests"]) == 1
    print(json.dumps(result, indent=1))
    if args.md:
        args.md.write_text(markdown(result), encoding="utf-8")
    return 0 if result["same_choice"] else 1


if __name__ == "__main__":
    sys.exit(main())
