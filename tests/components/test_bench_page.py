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
        if r["kind"] == "order":          # one pass over the seeded shuffles, each seed in its own process
            assert len(r["samples"]) == 1 and [s["seed"] for s in r["samples"][0]["seeds"]] == [1, 2, 3, 4, 5]
            continue
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
        fed_by_config = r["kind"] in ("job", "order") or r["name"] == "nlu_ci_default"
        expected = fingerprint(code, r["kind"], r["name"], r["size"], [train, test, *([config] if fed_by_config else [])])
        assert r["fingerprint"] == expected
        assert r["run_id"] == (meta["run_id"] if fed_by_config else first["meta"]["run_id"]), r["name"]
    reused = [line for line in _table(second["md"], "## Training and evaluation") if "reused:" in line]
    assert len(reused) == 4 and all(first["meta"]["run_id"] in line and first["meta"]["commit"] in line
                                    for line in reused)
    assert "3 of 7 rows were measured in this run" in second["md"]    # + the example-order row


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


def _again(tmp: Path, config: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "run_bench.py"), "--again", str(out), "--dataset",
                           str(tmp / "ds"), "--config", str(config), "--work", str(tmp / "work"),
                           "--again-under", "1e9"], capture_output=True, text=True, timeout=900, cwd=ROOT)


def test_again_measures_the_page_rows_anew_and_adds_the_comparison(runs):
    tmp, config, _, second = runs
    out = tmp / "out"
    before = (out / "results.md").read_text()
    assert "None of the 7 rows has been measured by another run" in before
    proc = _again(tmp, config, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = json.loads((out / "results.json").read_text())
    assert page["rows"] == second["rows"]                 # the page's own numbers are those of its run
    md = (out / "results.md").read_text()
    assert md.split("## The same code measured again")[0] == before.split("## The same code measured again")[0]
    table = _table(md, "## The same code measured again")[1:]
    again_ids = {rs[-1]["run_id"] for rs in page["again"].values()}
    assert len(again_ids) == 1 and second["meta"]["run_id"] not in again_ids
    assert len(page["again"]) == 7 and {r["fingerprint"] for r in second["rows"]} == set(page["again"])
    for r in second["rows"]:
        if r["kind"] == "order":          # no timing columns: its comparison is the entity F1 of each order
            continue
        other = page["again"][r["fingerprint"]][-1]
        assert other["fingerprint"] == r["fingerprint"] and other["samples"] != r["samples"]
        name = f"{bench_report.LABELS.get(r['name'], r['name'])} @ {r['size']:,}"
        lines = [line for line in table if line.startswith(f"| {name} |")]
        key = "train_s" if r["kind"] == "pipeline" else "run_s"
        first_line = [c.strip() for c in lines[0].split("|")[1:-1]]
        assert first_line[2] == bench_report.sp(r[key], ",.2f") and first_line[3].startswith(
            bench_report.sp(other[key], ",.2f"))
        assert first_line[5] == bench_report.again_verdict(r[key], other[key])
        f1s = [c for c in ([x.strip() for x in line.split("|")[1:-1]] for line in lines) if c[1].endswith(" F1")]
        assert len(f1s) == sum(r.get(k) is not None for k in ("intent_f1", "entity_f1"))
        for f1 in f1s:                                     # training is deterministic (the stock SVC grid aside)
            assert f1[5] in ("identical", bench_report.NOT_DETERMINISTIC.get(r["name"])), f1
    # a page rendered again from its results.json and the journal is the same page
    rendered = subprocess.run([sys.executable, str(ROOT / "bench" / "run_bench.py"), "--render", str(out),
                               "--work", str(tmp / "work")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert (out / "results.md").read_text() == md


def test_again_refuses_a_page_whose_code_config_or_data_changed(runs, tmp_path):
    tmp, config, _, second = runs
    changed = tmp_path / "nlu_config.yml"
    changed.write_text(config.read_text() + "# changed after the page was written\n")
    out = tmp_path / "page"
    out.mkdir()
    (out / "results.json").write_text((tmp / "out" / "results.json").read_text())
    proc = _again(tmp, changed, out)
    assert proc.returncode == 2
    assert f"changed since run {second['meta']['run_id']}" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads((out / "results.json").read_text())["rows"] == second["rows"]


def _spread(lo: float, mid: float, hi: float, n: int = 3) -> dict:
    return {"min": lo, "median": mid, "max": hi, "n": n}


@pytest.mark.parametrize(("this", "other", "verdict"), [
    (_spread(10, 11, 12), _spread(11.5, 12, 13), bench_report.WITHIN),      # ranges overlap
    (_spread(10, 11, 12), _spread(12.5, 13, 14), bench_report.MOVED),       # disjoint: moved beyond the noise
    (_spread(20, 21, 22), _spread(10, 11, 12), bench_report.MOVED),
    (_spread(5, 5, 5, 1), _spread(4, 6, 8), bench_report.NO_SPREAD),        # one repeat: nothing to judge by
    (_spread(5, 5, 5, 1), _spread(5, 5, 5, 1), bench_report.WITHIN),
])
def test_two_measurements_agree_only_when_their_spreads_overlap(this, other, verdict):
    assert bench_report.again_verdict(this, other) == verdict


def test_an_f1_that_differs_between_runs_of_the_same_code_is_flagged():
    s = _spread(1, 1, 1)
    row = {"kind": "pipeline", "name": "nlu_ci_intent", "size": 10, "fingerprint": "f", "run_id": "a",
           "train_s": s, "intent_f1": 0.9, "entity_f1": None}
    other = dict(row, run_id="b", measured_at="then", intent_f1=0.8)
    table = bench_report.again_rows([row], {"f": [other]})
    assert ("nlu-ci: LinearIntentClassifier @ 10", "intent F1", "0.9000", "0.8000, run b (then)", "+0.1000",
            "**differs**") in table
    assert not any(t[1] == "entity F1" for t in table)
    stock = dict(row, name="classic_intent")                # its SVC is unseeded: a difference is not flagged
    assert bench_report.again_rows([stock], {"f": [dict(stock, run_id="b", measured_at="then", intent_f1=0.8)]})[-1][
        -1] == bench_report.NOT_DETERMINISTIC["classic_intent"]
    md = "\n".join(bench_report.again_section([row], {"f": [other]}))
    assert "1 of 1 rows measured again; 2 quantities: 1 within the spread or identical, 1 moved beyond" in md
