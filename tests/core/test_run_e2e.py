"""`nlu-ci run` end to end through the real CLI with real rasa_nlu training on the bundled sample data."""
from __future__ import annotations

import json
from pathlib import Path

from nlu_ci.registry.store import ModelStore
from support.data import SAMPLE, shuffled_train_labels, write_data


def active_of(store_dir: Path) -> str | None:
    p = store_dir / "ACTIVE"
    return p.read_text().strip() if p.exists() else None


def history(store_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (store_dir / "history.jsonl").read_text().splitlines() if line.strip()]


def test_first_run_promotes_then_same_data_skips(cli, tmp_path, any_pipeline):
    report_path = tmp_path / "report.json"
    r = cli(["run", "--data", str(SAMPLE), "--report", str(report_path), "--json"])
    assert r.code == 0, r.output
    rep = r.json
    assert rep["outcome"] == "promoted"
    assert rep["active"] is None
    assert rep["decision"]["promote"] is True
    assert rep["data"]["train_examples"] + rep["data"]["test_examples"] == 240
    assert 0.2 * 240 * 0.5 < rep["data"]["test_examples"] < 0.2 * 240 * 1.6
    assert rep["candidate"]["intent_f1"] > 0.6
    assert rep["candidate"]["entity_f1"] is not None and rep["candidate"]["entity_f1"] > 0.5
    assert set(rep["candidate"]["per_intent"]) >= {"greet", "order_pizza", "book_table"}
    for stage in ("lock", "load", "split", "train", "evaluate", "decide", "promote", "total"):
        assert stage in rep["durations"], stage
    assert json.loads(report_path.read_text())["outcome"] == "promoted"
    assert json.loads((cli.store / "last_report.json").read_text())["candidate"]["model"] == rep["candidate"]["model"]
    name = rep["candidate"]["model"]
    assert active_of(cli.store) == name
    meta = json.loads((cli.store / name / "nlu_ci.json").read_text())
    assert meta["fingerprint"] == rep["data"]["fingerprint"]
    assert meta["split"]["method"] == "hash" and meta["split"]["fraction"] == 0.2
    assert meta["metrics"]["intent_f1"] == rep["candidate"]["intent_f1"]
    assert meta["config"]["text"] == Path(cli.config).read_text()  # the pipeline this case runs with
    assert ModelStore(cli.models).verify(name) == []
    preds = [json.loads(x) for x in Path(rep["predictions_file"]).read_text().splitlines()]
    assert len(preds) == rep["data"]["test_examples"] and preds[0]["candidate"]["intent"]

    r2 = cli(["run", "--data", str(SAMPLE), "--json"])
    assert r2.code == 0 and r2.json["outcome"] == "skipped", r2.output
    assert "train" not in r2.json["durations"]
    assert active_of(cli.store) == name
    assert [h["outcome"] for h in history(cli.store) if h["event"] == "run"] == ["promoted", "skipped"]


def test_worse_data_is_rejected_and_active_stays(cli, tmp_path, sample_examples, any_pipeline):
    assert cli(["run", "--data", str(SAMPLE)]).code == 0
    good = active_of(cli.store)
    bad = write_data(tmp_path / "shuffled.json", shuffled_train_labels(sample_examples, 0.6))
    r = cli(["run", "--data", str(bad), "--json"])
    assert r.code == 0, r.output
    rep = r.json
    assert rep["outcome"] == "rejected"
    assert rep["candidate"]["intent_f1"] < rep["active"]["intent_f1"]
    assert rep["active"]["model"] == good
    assert rep["data"]["test_examples"] == json.loads((cli.store / good / "nlu_ci.json").read_text())["data"]["test_examples"]
    assert active_of(cli.store) == good
    assert not rep["decision"]["promote"]
    # the rejected model is kept for inspection, complete, but not active
    assert (cli.store / rep["candidate"]["model"] / "nlu_ci.json").exists()


def test_human_output_and_status_and_rollback(cli, tmp_path, sample_examples):
    r = cli(["run", "--data", str(SAMPLE)])
    assert r.code == 0 and "PROMOTED" in r.stdout
    first = active_of(cli.store)
    more = sample_examples + [{"text": f"please book a table for {n} people", "intent": "book_table", "entities": []}
                              for n in ("two", "three", "four", "five", "six", "seven", "eight")]
    # force a promotion of a second model regardless of F1: rollback needs two promoted models
    data2 = write_data(tmp_path / "more.json", more)
    r = cli(["run", "--data", str(data2), "--json"])
    assert r.code == 0
    if r.json["outcome"] != "promoted":
        second = r.json["candidate"]["model"]
        assert cli(["rollback", second]).code == 0
    second = active_of(cli.store)
    assert second != first

    st = cli(["status", "--json"])
    assert st.code == 0 and st.json["active"]["model"] == second and st.json["active"]["intact"]
    assert st.json["previous"] == first
    text = cli(["status"]).stdout
    assert second in text and "intent F1" in text

    rb = cli(["rollback", "--json"])
    assert rb.code == 0 and rb.json["active"] == first, rb.output
    assert active_of(cli.store) == first
    assert history(cli.store)[-1]["event"] == "rollback"
    assert cli(["rollback", "model_does_not_exist"]).code == 2


def test_dry_run_never_promotes_and_keeps_no_model(cli):
    r = cli(["run", "--data", str(SAMPLE), "--dry-run", "--json"])
    assert r.code == 0 and r.json["outcome"] == "dry_run"
    assert r.json["candidate"]["intent_f1"] > 0
    assert active_of(cli.store) is None
    assert ModelStore(cli.models).models() == []
    assert list((cli.store / ".incoming").iterdir()) == []


def test_env_vars_configure_everything(cli, tmp_path):
    r = cli(["run"], NLU_CI_DATA=str(SAMPLE), NLU_CI_TEST_FRACTION="0.3", NLU_CI_OUTPUT="json",
            NLU_CI_PROJECT="shop")
    assert r.code == 0, r.output
    assert r.json["project"] == "shop" and r.json["data"]["split"]["fraction"] == 0.3
    assert active_of(cli.models / "shop")


def test_evaluate_and_train_commands(cli, tmp_path):
    r = cli(["train", "--data", str(SAMPLE), "--json"])
    assert r.code == 0, r.output
    model = r.json["model"]
    assert active_of(cli.store) is None  # train never promotes
    ev = cli(["evaluate", model, "--data", str(SAMPLE), "--json"])
    assert ev.code == 0, ev.output
    assert ev.json["test_examples"] == 240 and ev.json["intent_f1"] > 0.8  # trained on it
    table = cli(["evaluate", model, "--data", str(SAMPLE)]).stdout
    assert "order_pizza" in table
    assert cli(["evaluate", "nope", "--data", str(SAMPLE)]).code == 2


def test_retention_keeps_newest_and_never_active(cli, tmp_path, sample_examples):
    assert cli(["run", "--data", str(SAMPLE)]).code == 0
    active = active_of(cli.store)
    rejected = []
    for i in range(3):
        bad = write_data(tmp_path / f"bad{i}.json", shuffled_train_labels(sample_examples, 0.7, seed=i))
        r = cli(["run", "--data", str(bad), "--keep-models", "2", "--json"])
        assert r.json["outcome"] == "rejected", r.output
        rejected.append(r.json["candidate"]["model"])
    # the newest 2 are kept, plus the active model although it is the oldest
    assert ModelStore(cli.models).models() == sorted([active, *rejected[1:]])
    assert r.json["pruned"] == [rejected[0]]
    assert active_of(cli.store) == active
