"""`make bench-memory`: peak memory of the whole `nlu-ci run` (the job and its training children) at HWU64's
9,960 examples and the 100k synthetic scale-up, and the seconds from a SIGTERM during training at 100k to
the job's exit (outcome `failed`, metrics on a real Pushgateway).

Each size is three real `python -m nlu_ci.cli run`s (``--repeats``; default config, the pod's workers: ``NLU_CI_WORKERS`` or
the CPU limit) sampled every 0.1 s by ``proctree.Sampler`` (PSS summed over the process tree: shared
copy-on-write pages counted once; the RSS sum beside it). The same data files as `make bench`
(``bench_data.prepare_data``: HWU64 train, seeded order; 100k = HWU64 + synthetic variants).

    .venv/bin/python bench/memory.py                       # this tree: "after"; docs/bench/memory.{json,md}
    .venv/bin/python bench/memory.py --before 96c7062      # that commit (git archive): "before", once
    .venv/bin/python bench/memory.py --overlap --sizes 100000   # the CRF's fits beside the intent fit: "overlap"
    .venv/bin/python bench/memory.py --render              # rewrite the page from memory.json only

The page keeps the other label's figures from memory.json; targets: peak at 100k <= 800 MB, SIGTERM to
exit <= 5 s. tests/k8s/test_manifests.py sizes the CronJob's memory request from memory.json's 100k peak.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import prepare_data, read_examples  # noqa: E402
from journal import commit  # noqa: E402
from proctree import Sampler  # noqa: E402
from sigterm import measure_sigterm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
OUT = ROOT / "docs" / "bench"
WORK = ROOT / "var" / "bench" / "memory"
TARGET_MB = 800.0
TARGET_SIGTERM_S = 5.0
LABELS = {"before": "before", "after": "after", "overlap": "after, CRF beside intent (`--overlap`)"}


def log(msg: str) -> None:
    print(f"[bench-memory {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def job_env(code: Path, models: Path, train: Path, test: Path, config: Path | None = None,
            **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLU_CI_", "RASA_", "PUSHGATEWAY_", "SLACK_"))}
    if os.environ.get("NLU_CI_WORKERS"):
        env["NLU_CI_WORKERS"] = os.environ["NLU_CI_WORKERS"]
    env.update(PYTHONPATH=str(code / "src"), NLU_CI_MODELS_DIR=str(models), NLU_CI_DATA=str(train),
               NLU_CI_TEST_DATA=str(test), NLU_CI_OUTPUT="json", NLU_CI_LOG_LEVEL="INFO", NLU_CI_KUBERNETES="off",
               NLU_CI_MAX_REPAIR_SHARE="0.2", NLU_CI_CONFIG=str(config or code / "nlu_config.yml"))
    env.update(extra)
    return env


def start_job(code: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", "run"], env=env, cwd=str(code),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _find(doc, key: str):
    """The first value of ``key`` anywhere in a JSON document (the candidate's metrics)."""
    if isinstance(doc, dict):
        if key in doc and not isinstance(doc[key], dict | list):
            return doc[key]
        for value in doc.values():
            found = _find(value, key)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for value in doc:
            found = _find(value, key)
            if found is not None:
                return found
    return None


def overlap_config(code: Path) -> Path:
    """nlu_config.yml with the CRF's fits beside the intent fit at any size (``overlap_max_examples`` above
    every training size): what the default's 25,000 saves in memory at 100k, and costs in time."""
    import yaml

    doc = yaml.safe_load((code / "nlu_config.yml").read_text(encoding="utf-8"))
    for component in doc["pipeline"]:
        if component.get("name", "").endswith("LeanCRFEntityExtractor"):
            component["overlap_max_examples"] = 10**9
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "nlu_config_overlap.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def measure_run(code: Path, size: int, train: Path, test: Path, config: Path | None = None) -> dict:
    """One whole `nlu-ci run` with its process tree sampled; marks at each stage's start line."""
    with tempfile.TemporaryDirectory(prefix="nlu-ci-bench-mem-") as tmp:
        proc = start_job(code, job_env(code, Path(tmp) / "models", train, test, config))
        sampler, t0 = Sampler(proc.pid), time.monotonic()
        err_lines = []
        for line in proc.stderr:
            err_lines.append(line)
            if "stage " in line and ": started" in line:
                sampler.mark(line.split("stage ", 1)[1].split(":", 1)[0])
        out = proc.stdout.read()
        proc.wait()
        wall = time.monotonic() - t0
        peak = sampler.stop()
    row = {"train_examples": size, "wall_s": round(wall, 1), "exit": proc.returncode, **peak}
    try:
        report = json.loads(out)
    except json.JSONDecodeError:
        row["error"] = ("".join(err_lines[-3:]) or out[-300:]).strip()[-300:]
        return row
    cand = report.get("candidate") or {}
    row.update(outcome=report.get("outcome"), intent_f1=cand.get("intent_f1", _find(report, "intent_f1")),
               entity_f1=cand.get("entity_f1", _find(report, "entity_f1")), workers=_find(report, "workers"))
    return row


def export_commit(rev: str) -> Path:
    """The tree of ``rev`` (git archive) under var/bench/memory/code-REV."""
    where = WORK / f"code-{rev}"
    if not (where / "src").is_dir():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        data = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
        with tempfile.TemporaryFile() as fh:
            fh.write(data)
            fh.seek(0)
            with tarfile.open(fileobj=fh) as tar:
                tar.extractall(where, filter="data")
    return where


def _median_run(tries: list[dict]) -> dict:
    """The run with the median peak PSS (its stage marks and scores), with every run's peak beside it:
    ``peak_pss_all_mb`` and ``peak_pss_max_mb`` (the manifest's memory request is sized from the largest)."""
    measured = sorted((r for r in tries if r.get("peak_pss_mb")), key=lambda r: r["peak_pss_mb"])
    if not measured:
        return tries[0]
    middle = dict(measured[(len(measured) - 1) // 2])
    middle["peak_pss_all_mb"] = [r.get("peak_pss_mb") for r in tries]
    middle["peak_pss_max_mb"] = measured[-1]["peak_pss_mb"]
    return middle


def _peak(r: dict) -> str:
    every = [v for v in r.get("peak_pss_all_mb") or [] if isinstance(v, int | float)]
    if len(every) < 2:
        return _mb(r.get("peak_pss_mb"))
    return f"{_mb(r.get('peak_pss_mb'))} ({min(every):,.0f}-{max(every):,.0f}, n={len(every)})"


def _mb(value) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else "–"


def _f(value, spec: str = ".4f") -> str:
    return format(value, spec) if isinstance(value, int | float) else "–"


def render(doc: dict) -> str:
    lines = ["# Peak memory of `nlu-ci run` and SIGTERM during training", "",
             "`make bench-memory` (bench/memory.py): real `nlu-ci run`s (3 per size unless `--repeats`; the "
             "table shows the median run's peak with the min-max of all) with the default config "
             "(nlu_config.yml) and the pod's workers, the whole process tree (the job and the training children "
             "it forks) sampled every 0.1 s from /proc. **Peak PSS** sums each process's proportional set size "
             "(a copy-on-write page shared by a fork counts once overall): what the tree holds, close to a pod's "
             "memory cgroup charge; the RSS sum counts shared pages in every process (an upper bound). No cgroup "
             "`memory.peak` is available on this machine. Data: HWU64 train in the bench's seeded order (9,960) "
             "and its synthetic scale-up to 100,000 (bench_data.py), HWU64 test for evaluation.", "",
             f"Target (issue 23): peak at 100,000 examples at most **{TARGET_MB:,.0f} MB**; SIGTERM during "
             f"training at 100k: exit within **{TARGET_SIGTERM_S:.0f} s**, outcome `failed`, metrics pushed.", ""]
    lines += ["| measured | commit | train examples | workers | peak PSS MB | peak RSS sum MB | processes | "
              "wall s | outcome | intent F1 | entity F1 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in LABELS:
        part = doc.get(label)
        if not part:
            continue
        for r in part["runs"]:
            lines.append(f"| {LABELS[label]} | {part['commit']} | {r['train_examples']:,} | {part.get('workers', '–')} | "
                         f"{_peak(r)} | {_mb(r.get('peak_rss_sum_mb'))} | {r.get('max_processes')} | "
                         f"{_f(r.get('wall_s'), '.0f')} | {r.get('outcome') or r.get('error', '–')} | "
                         f"{_f(r.get('intent_f1'))} | {_f(r.get('entity_f1'))} |")
    lines += ["", "Wall seconds are elapsed time under this shared machine's load at the time (other work ran beside "
              "it), not a speed figure: docs/bench/results.md times the job.", ""]
    after = doc.get("after") or {}
    big = next((r for r in after.get("runs", []) if r["train_examples"] == 100_000), None)
    if big and big.get("peak_pss_mb"):
        met = big["peak_pss_mb"] <= TARGET_MB
        every = [v for v in big.get("peak_pss_all_mb") or [] if isinstance(v, int | float)]
        above = sum(v > TARGET_MB for v in every)
        spread = (f" (median of {len(every)} runs: {min(every):,.0f}-{max(every):,.0f} MB, {above} of them above "
                  f"the target)") if len(every) > 1 else ""
        lines += [f"**Peak at 100,000: {big['peak_pss_mb']:,.0f} MB{spread} — target {TARGET_MB:,.0f} MB "
                  f"{'met' if met else 'missed'}.**", ""]
        beside = next((r for r in (doc.get("overlap") or {}).get("runs", []) if r["train_examples"] == 100_000), None)
        if beside and beside.get("peak_pss_mb"):
            lines += [f"With the CRF's fits beside the intent fit at 100,000 (`--overlap`: `overlap_max_examples` "
                      f"above the size; the default, 25,000, does not at this size): peak "
                      f"{_peak(beside)} MB and {_f(beside.get('wall_s'), '.0f')} s against {_peak(big)} MB and "
                      f"{_f(big.get('wall_s'), '.0f')} s: both cores busy, both fits' memory at once.", ""]
    lines += ["## Where the memory goes (tree PSS when each stage of the job starts)", ""]
    for label in LABELS:
        for r in (doc.get(label) or {}).get("runs", []):
            marks = ", ".join(f"{m['what']} {m['pss_mb']:,.0f} MB @{m['at_s']:.0f}s" for m in r.get("marks", []))
            lines.append(f"- {LABELS[label]}, {r['train_examples']:,}: {marks}; peak {_mb(r.get('peak_pss_mb'))} MB "
                         f"@{_f(r.get('peak_at_s'), '.0f')}s")
    lines += ["", "## SIGTERM during training at 100,000 examples", "",
              "`nlu-ci run` at 100k with a real Pushgateway (Debian's prometheus-pushgateway, started as "
              "tests/support/servers.py does); SIGTERM sent the given seconds after the log's `stage train: "
              "started`; seconds from the signal to the job's exit; the report's outcome; whether the Pushgateway "
              "then holds `nlu_ci_run_outcome{outcome=\"failed\"} 1`; whether any training child outlived the job.",
              "", "| measured | commit | SIGTERM after s | children at signal | exit s | exit code | outcome | "
              "metrics pushed | orphans | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label in ("before", "after"):
        part = doc.get(label) or {}
        s = part.get("sigterm")
        if not s:
            continue
        ok = (s.get("exit_s") is not None and s["exit_s"] <= TARGET_SIGTERM_S and s.get("outcome") == "failed"
              and s.get("pushed"))
        lines.append(f"| {label} | {part['commit']} | {s['after_s']:.0f} | {s.get('children_at_signal')} | "
                     f"{_f(s.get('exit_s'), '.2f')} | {s.get('exit')} | {s.get('outcome')} | {s.get('pushed')} | "
                     f"{s.get('orphans')} | {'met' if ok else 'missed'} |")
    data = [f"{label}: " + (f"{part['regex_features']} regex features in the training files" if "regex_features"
                            in part else "the examples only (the bench's files had no regex features before e131817)")
            for label, part in ((k, doc.get(k)) for k in ("before", "after")) if part]
    lines += ["", "Training data per label: " + "; ".join(data) + ". Regex features add pattern marks to every "
              "token and CRF features: the two labels' peaks are not measured on the same files."]
    lines += ["", "Machine: " + (doc.get("after") or doc.get("before") or {}).get("machine", "–"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="REV", help="measure commit REV (git archive) and store it as 'before'")
    ap.add_argument("--dataset", type=Path, default=Path(os.environ.get("BENCH_DATASET", HWU64)))
    ap.add_argument("--sizes", default="full,100000", help="training sizes ('full': the whole train set)")
    ap.add_argument("--sigterm-after", type=float, default=30.0,
                    help="seconds after `stage train: started` to send SIGTERM at 100k (0: no SIGTERM run)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per size: the page shows the median peak, "
                    "min-max beside it (one run's peak varied 799-833 MB at 100k with the same code)")
    ap.add_argument("--overlap", action="store_true", help="this tree with the CRF's fits beside the intent fit at "
                    "every size (overlap_max_examples above it), stored as 'overlap'; no SIGTERM run")
    ap.add_argument("--out-dir", type=Path, default=OUT)
    ap.add_argument("--render", action="store_true", help="rewrite the page from memory.json, measure nothing")
    args = ap.parse_args(argv)
    store = args.out_dir / "memory.json"
    doc = json.loads(store.read_text()) if store.exists() else {}
    if not args.render:
        code = export_commit(args.before) if args.before else ROOT
        label = "before" if args.before else "overlap" if args.overlap else "after"
        config = overlap_config(code) if args.overlap else None
        full = len(read_examples(args.dataset / "train.json"))
        sizes = [full if s == "full" else int(s) for s in args.sizes.split(",")]
        files = prepare_data(args.dataset, ROOT / "var" / "bench" / "data", sorted(set(sizes + [100_000])))
        test = args.dataset / "test.json"
        runs = []
        for size in sizes:
            tries = []
            for i in range(args.repeats):
                log(f"{label}: nlu-ci run at {size:,} ({i + 1}/{args.repeats})")
                tries.append(measure_run(code, size, files[size], test, config))
                log(f"  peak PSS {tries[-1].get('peak_pss_mb')} MB, RSS sum {tries[-1].get('peak_rss_sum_mb')} MB, "
                    f"{tries[-1].get('wall_s')} s, {tries[-1].get('outcome') or tries[-1].get('error')}")
            runs.append(_median_run(tries))
        part = {"commit": commit(code) if not args.before else
                subprocess.run(["git", "rev-parse", "--short=10", args.before], cwd=ROOT, capture_output=True, text=True).stdout.strip(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs,
                "workers": os.environ.get("NLU_CI_WORKERS") or f"{os.cpu_count()} (CPU limit)",
                "regex_features": len(json.loads(files[sizes[0]].read_text(encoding="utf-8"))["rasa_nlu_data"]
                                      .get("regex_features") or []),
                "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"}
        if args.sigterm_after > 0 and not args.overlap:
            log(f"{label}: SIGTERM {args.sigterm_after:.0f} s into training at 100,000")
            part["sigterm"] = measure_sigterm(
                lambda extra, models: start_job(code, job_env(code, models, files[100_000], test, **extra)),
                args.sigterm_after)
            log(f"  {part['sigterm']}")
        doc[label] = part
        args.out_dir.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "memory.md").write_text(render(doc))
    log(f"wrote {args.out_dir / 'memory.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
