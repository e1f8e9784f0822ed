"""`make bench --quick` writes a page made only of that run's measurements (or rows whose fingerprint matches).

Runs the real benchmark driver twice on a small dataset cut from the bundled sample: the first run measures
everything; the second, with the default config changed, must re-measure exactly the rows that config feeds
and reuse the others, labelled with the run and commit they came from.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import bench_report  # noqa: E402
from journal import code_hash, fingerprint  # noqa: E402

pytestmark = pytest.mark.slow


def _bench(tmp: Path, config: Path) -> dict:
    out = tmp / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_bench.py"), "--quick", "--dataset",
                           str(tmp / "ds"), "--sizes", "full", "--ratio-sizes", "full", "--config", str(config),
                           "--work", str(tmp / "work"), "--out", str(out), "--target", "eval_ups=1e12",
                           "--budget", "600"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    result["md"] = (out / "results.md").read_text()
    assert (out / "plot.png").stat().st_size > 10_000
    return result


def _table(md: str, heading: str) -> list[str]:
    section = md.split(heading, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    examples = json.loads((ROOT / "data" / "sample" / "nlu.json").read_text())["rasa_nlu_data"]["common_examples"]
    random.Random(7).shuffle(examples)
    (tmp / "ds").mkdir()
    for name, part in (("train", examples[:180]), ("test", examples[180:])):
        (tmp / "ds" / f"{name}.json").write_text(json.dumps({"rasa_nlu_data": {"common_examples": part}}))
    config = tmp / "nlu_config.yml"
    config.write_text((ROOT / "nlu_config.yml").read_text())
    first = _bench(tmp, config)
    config.write_text(config.read_text() + "# changed: every row this config feeds is measured again\n")
    second = _bench(tmp, config)
    return tmp, config, first, second


def test_first_run_measures_every_row_itself_with_spread_and_load(runs):
    _, _, first, _ = runs
    meta, rows = first["meta"], first["rows"]
    kinds = {(r["kind"], r["name"]) for r in rows}
    assert {("pipeline", "classic_intent"), ("pipeline", "nlu_ci_intent"), ("pipeline", "nlu_ci_default"),
            ("pipeline", "classic_entities"), ("pipeline", "nlu_ci_entities"), ("job", "nlu-ci run")} <= kinds
    for r in rows:
        assert "skipped" not in r, r
        assert r["run_id"] == meta["run_id"] and r["commit"] == meta["commit"]
        assert len(r["load"]) >= 2 and all(x >= 0 for x in r["load"])
        assert len(r["samples"]) == 2
        timed = ("train_s", "eval_each_ups") if r["kind"] == "pipeline" else ("run_s", "sklearn_s", "ratio")
        for key in timed:
            s = r[key]
            assert s["n"] == 2 and s["min"] <= s["median"] <= s["max"]
    job = next(r for r in rows if r["kind"] == "job")
    ratios = sorted(round(s["run_s"] / s["sklearn_s"], 3) for s in job["samples"])
    assert [job["ratio"]["min"], job["ratio"]["max"]] == [ratios[0], ratios[-1]]
    md = first["md"]
    assert "†" not in md and "reused" not in md
    table = _table(md, "## Training and evaluation")
    assert table[0].split("|")[-3].strip() == "load"
    assert len(table) - 1 == sum(r["kind"] == "pipeline" for r in rows)
    for line, row in zip(table[1:], [r for r in rows if r["kind"] == "pipeline"], strict=True):
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[-1] == "this run"
        assert re.fullmatch(r"\d+\.\d–\d+\.\d", cells[-2]), cells[-2]
        assert cells[2].startswith(f"{row['train_s']['median']:.2f} (")


def test_targets_are_judged_on_the_median_and_an_impossible_one_is_missed(runs):
    _, _, first, _ = runs
    targets = {cells[1].strip(): cells[3].strip() for cells in (line.split("|") for line in _table(first["md"], "## Targets")[1:])}
    impossible = next(k for k in targets if k.startswith("evaluation >= 1,000,000,000,000 utterances/s"))
    assert targets[impossible] == "**missed**"
    intent = next(r for r in first["rows"] if r["name"] == "nlu_ci_intent")
    row = next(line for line in _table(first["md"], "## Targets") if impossible in line)
    assert f"{intent['eval_batch_ups']['median']:,.0f} utt/s" in row
    assert targets[next(k for k in targets if k.startswith("peak RSS"))] == "not measured"


def test_rerun_reuses_only_rows_whose_fingerprint_still_matches(runs):
    tmp, config, first, second = runs
    meta = second["meta"]
    assert meta["run_id"] != first["meta"]["run_id"]
    code = code_hash(ROOT)
    train, test = tmp / "work" / "train_180.json", tmp / "ds" / "test.json"
    for r in second["rows"]:
        fed_by_config = r["kind"] == "job" or r["name"] == "nlu_ci_default"
        expected = fingerprint(code, r["kind"], r["name"], r["size"], [train, test, *([config] if fed_by_config else [])])
        assert r["fingerprint"] == expected
        assert r["run_id"] == (meta["run_id"] if fed_by_config else first["meta"]["run_id"]), r["name"]
    reused = [line for line in _table(second["md"], "## Training and evaluation") if "reused:" in line]
    assert len(reused) == 4 and all(first["meta"]["run_id"] in line and first["meta"]["commit"] in line
                                    for line in reused)
    assert "2 of 6 rows were measured in this run" in second["md"]


def _job(overheads: list[float]) -> dict:
    spread = {"min": min(overheads), "median": sorted(overheads)[len(overheads) // 2], "max": max(overheads),
              "n": len(overheads)}
    s = {"min": 10.0, "median": 10.0, "max": 10.0, "n": len(overheads)}
    return {"kind": "job", "name": "nlu-ci run", "size": 100, "run_s": s, "bare_s": s, "overhead_pct": spread}


@pytest.mark.parametrize(("overheads", "verdict"), [([-8.0, -5.2, 3.1], "noise: not resolved"),
                                                    ([-1.0, 2.0, 4.0], "noise: not resolved"),
                                                    ([1.0, 2.0, 4.0], "met"), ([-3.0, 6.0, 9.0], "**missed**")])
def test_overhead_below_zero_is_reported_as_noise_not_as_met(overheads, verdict):
    meta = {"targets": dict(bench_report.TARGETS), "train_full": 100, "test_examples": 10}
    found = {name: (measured, v) for name, measured, v in bench_report.targets([_job(overheads)], meta)}
    measured, v = next(value for name, value in found.items() if name.startswith("job overhead"))
    assert v == verdict
    assert f"spread {min(overheads):+.1f} … {max(overheads):+.1f} %" in measured
