"""`nlu-ci run --cv-folds K` with several --config: real runs on a small HWU64 subset (6 intents x 20 examples).
The search is on the training side only, its folds are stratified and deterministic, serial and parallel
choose the same config with the same fold scores, the report/summary/review page show it, bad K is exit 2."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from support.data import cli_env, run_cli

HWU64 = Path("/work/shared/datasets/hwu64")
LINEAR = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: nlu_ci.components.LinearIntentClassifier
    calibration_folds: 0
"""
KEYWORD = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: KeywordIntentClassifier
"""


def small_hwu64(path: Path, intents: int = 6, per_intent: int = 20) -> Path:
    examples = json.loads((HWU64 / "train.json").read_text())["rasa_nlu_data"]["common_examples"]
    chosen = sorted({e["intent"] for e in examples})[:intents]
    keep = [e for i in chosen for e in [x for x in examples if x["intent"] == i][:per_intent]]
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": keep}}))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    where = tmp_path_factory.mktemp("cv")
    (where / "keyword.yml").write_text(KEYWORD)
    (where / "linear.yml").write_text(LINEAR)
    (where / "linear-copy.yml").write_text(LINEAR)
    return where, small_hwu64(where / "small.json")


def cv_run(where: Path, data: Path, name: str, configs: list[str], *extra: str, workers: int = 2, json_out=True):
    env = cli_env(where / name, NLU_CI_WORKERS=str(workers))
    args = ["run", "--data", str(data), *extra]
    for c in configs:
        args += ["--config", str(where / c)]
    return run_cli(args + (["--json"] if json_out else []), env)


@pytest.fixture(scope="module")
def parallel(files):
    where, data = files
    run = cv_run(where, data, "parallel", ["keyword.yml", "linear.yml"], "--cv-folds", "3")
    assert run.code == 0, run.output
    return run.json


def test_the_search_picks_by_cross_validation_on_the_training_side(parallel, files):
    cv = parallel["cv_search"]
    assert cv["folds"] == 3 and cv["tasks"] == 6 and cv["workers"] == 2 and cv["runner"] == "processes"
    keyword, linear = cv["configs"]
    assert cv["chosen"].endswith("linear.yml") and linear["chosen"] and not keyword["chosen"]
    assert parallel["candidate"]["config"] == cv["chosen"]  # the chosen config is the one trained on all of it
    for row in cv["configs"]:
        scores = [f["intent_f1"] for f in row["folds"]]
        assert len(scores) == 3
        assert row["intent_f1"]["mean"] == pytest.approx(statistics.fmean(scores))
        assert row["intent_f1"]["std"] == pytest.approx(statistics.pstdev(scores))
        assert (row["intent_f1"]["min"], row["intent_f1"]["max"]) == (min(scores), max(scores))
        # the folds partition the TRAINING side exactly: no test example is ever scored by the search
        assert sum(f["test_examples"] for f in row["folds"]) == parallel["data"]["train_examples"]
        sizes = [f["test_examples"] for f in row["folds"]]
        assert max(sizes) - min(sizes) <= 1
    assert linear["intent_f1"]["mean"] > keyword["intent_f1"]["mean"]
    assert parallel["durations"]["cv_search"] > 0 and cv["seconds"] > 0


def test_serial_chooses_the_same_with_the_same_fold_scores_and_says_it_in_the_summary(parallel, files):
    where, data = files
    run = cv_run(where, data, "serial", ["keyword.yml", "linear.yml"], "--cv-folds", "3", workers=1,
                 json_out=False)
    assert run.code == 0, run.output
    line = next(x for x in run.stdout.splitlines() if x.strip().startswith("cv search"))
    assert "3 folds x 2 configs" in line and "1 worker(s)" in line and line.count(" ± ") == 3
    assert f"chose {parallel['cv_search']['chosen']}" in line
    report = json.loads(next((where / "serial" / "default" / "reports").glob("*.json")).read_text())
    assert report["cv_search"]["runner"] == "serial"
    assert report["cv_search"]["scores_digest"] == parallel["cv_search"]["scores_digest"]
    assert [c["folds"] for c in report["cv_search"]["configs"]] != []
    for a, b in zip(report["cv_search"]["configs"], parallel["cv_search"]["configs"], strict=True):
        assert [f["intent_f1"] for f in a["folds"]] == [f["intent_f1"] for f in b["folds"]]


def test_the_review_page_shows_each_configs_mean_and_spread(parallel):
    page = Path(parallel["review_page"]["path"]).read_text()
    section = page[page.index('id="cv-search"'):]
    section = section[:section.index("</table>")]
    for row in parallel["cv_search"]["configs"]:
        assert Path(row["config"]).name in section
        assert f"{row['intent_f1']['mean']:.4f}" in section and f"{row['intent_f1']['std']:.4f}" in section
    assert section.count(">chosen<") == 1


def test_a_tie_goes_to_the_config_listed_first(files):
    where, data = files
    run = cv_run(where, data, "tie", ["linear-copy.yml", "linear.yml"], "--cv-folds", "2")
    assert run.code == 0, run.output
    first, second = run.json["cv_search"]["configs"]
    assert first["intent_f1"] == second["intent_f1"]  # the same pipeline: the same folds, the same scores
    assert run.json["cv_search"]["chosen"].endswith("linear-copy.yml") and first["chosen"]


def test_one_fold_index_as_the_indexed_job_runs_it_gives_the_runs_numbers(parallel, files, tmp_path):
    where, data = files
    env = cli_env(tmp_path / "unused", NLU_CI_CV_FOLDS="3", JOB_COMPLETION_INDEX="4",
                  NLU_CI_CV_RESULT_FILE=str(tmp_path / "termination-log"),
                  NLU_CI_CONFIG=f"{where / 'keyword.yml'},{where / 'linear.yml'}")
    run = run_cli(["cv-fold", "--data", str(data), "--json"], env)
    assert run.code == 0, run.output
    written = json.loads((tmp_path / "termination-log").read_text())
    assert written == run.json and (written["config"], written["fold"]) == (1, 1)  # index 4 = config 1 * K 3 + fold 1
    assert written["intent_f1"] == parallel["cv_search"]["configs"][1]["folds"][1]["intent_f1"]
    assert len((tmp_path / "termination-log").read_bytes()) < 4096
    assert not (tmp_path / "unused").exists()  # a fold pod never touches a model store
    bad = run_cli(["cv-fold", "--data", str(data), "--index", "6"], env)
    assert bad.code == 2 and "outside 0..5" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("k, needle", [("1", "at least 2 folds"), ("-3", "at least 2 folds"),
                                       ("13", "intent 'alarm_query' has only 12 training examples")])
def test_bad_k_is_one_line_and_exit_2(files, k, needle, tmp_path):
    where, data = files
    run = cv_run(where, data, f"bad{k}", ["keyword.yml", "linear.yml"], "--cv-folds", k, json_out=False)
    assert run.code == 2, run.output
    errors = [x for x in run.stderr.splitlines() if "ERROR" in x or "error:" in x]
    assert len(errors) == 1 and needle in errors[0], run.stderr


def test_k_with_one_config_trains_it_and_warns(files):
    where, data = files
    run = cv_run(where, data, "one", ["linear.yml"], "--cv-folds", "3")
    assert run.code == 0 and run.json["outcome"] == "promoted", run.output
    assert "cv_search" not in run.json
    assert any("--cv-folds 3 with one --config" in w for w in run.json["warnings"])


def test_an_intent_tie_goes_to_the_higher_entity_f1_and_a_config_without_entities_counts_lowest():
    from types import SimpleNamespace

    from nlu_ci.job.search import cv

    configs = [SimpleNamespace(path=Path(n)) for n in ("a.yml", "b.yml", "c.yml")]
    entity = {0: None, 1: 0.5, 2: 0.7}  # a: no entities; b and c: the same intent F1, c better on entities
    rows = [{"config": ci, "fold": f, "intent_f1": 0.8 + f / 100, "entity_f1": entity[ci], "test_examples": 3,
             "seconds": 0.1} for ci in range(3) for f in range(2)]
    found = cv.section(configs, rows, 2, 1.0, 2, "processes")
    assert found["chosen"] == "c.yml" and found["chosen_index"] == 2
    assert found["configs"][0]["entity_f1"] is None
    rows = [dict(r, entity_f1=None) for r in rows]
    assert cv.section(configs, rows, 2, 1.0, 2, "processes")["chosen"] == "a.yml"  # all tied: the first listed
    with pytest.raises(Exception, match="folds"):
        cv.section(configs, rows[:-1], 2, 1.0, 2, "processes")  # a missing fold is never averaged away
