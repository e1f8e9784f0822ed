"""Rollback holds through real ``nlu-ci`` processes: after a rollback the rolled-back-from data is not promoted
again (outcome ``rejected``, check ``rollback_hold``) until ``nlu-ci release`` or new data; ``status`` shows it."""
from __future__ import annotations

import json
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.data import SAMPLE, write_data


def few(examples: list[dict], k: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    intents = sorted({e["intent"] for e in examples})
    return [e for i in intents for e in rng.sample([x for x in examples if x["intent"] == i], k)]


def active_of(cli) -> str | None:
    p = cli.store / "ACTIVE"
    return p.read_text().strip() if p.exists() else None


def promoted(cli, data) -> dict:
    r = cli(["run", "--data", str(data), "--json"])
    assert r.code == 0 and r.json["outcome"] == "promoted", r.output
    return r.json


def test_a_rollback_holds_until_release_or_new_data(cli, tmp_path, sample_examples):
    a = promoted(cli, write_data(tmp_path / "a.json", few(sample_examples, 12)))
    b = promoted(cli, SAMPLE)
    first, second, held_fp = a["candidate"]["model"], b["candidate"]["model"], b["data"]["fingerprint"]

    rb = cli(["rollback", "--json"])
    assert rb.code == 0 and rb.json["active"] == first and rb.json["hold"]["fingerprint"] == held_fp, rb.output
    assert rb.json["hold"]["model"] == second
    assert json.loads((cli.store / "holds.json").read_text())["holds"][0]["fingerprint"] == held_fp
    # the dashboard's source shows the model that serves now, not the rolled-back-from one
    prom = {f"{s.name}{s.labels}": s.value for fam in text_string_to_metric_families((cli.store / "metrics.prom")
                                                                                     .read_text()) for s in fam.samples}
    assert prom["nlu_ci_intent_f1{'model': 'active'}"] == pytest.approx(a["candidate"]["intent_f1"])
    assert "nlu_ci_intent_f1{'model': 'candidate'}" not in prom and rb.json["metrics"]["error"] is None

    st = cli(["status"])
    assert st.code == 0 and f"hold:     data fingerprint {held_fp[:19]} is held: {second} was rolled back" in st.stdout
    assert "rejected (rollback_hold)" in st.stdout, st.stdout

    r = cli(["run", "--data", str(SAMPLE), "--json"])  # the next nightly run on the same data: judged, not promoted
    assert r.code == 0 and r.json["outcome"] == "rejected", r.output
    assert r.json["data"]["fingerprint"] == held_fp
    assert r.json["decision"]["reason"].startswith("rejected by rollback_hold: data fingerprint")
    assert "`nlu-ci release` or new data ends the hold" in r.json["decision"]["reason"]
    hold = next(c for c in r.json["decision"]["checks"] if c["name"] == "rollback_hold")
    assert hold["enabled"] and not hold["passed"] and hold["values"]["model"] == second
    assert active_of(cli) == first
    text = cli(["run", "--data", str(SAMPLE)]).stdout  # and the one after
    assert "REJECTED" in text and "rollback_hold" in text and active_of(cli) == first, text

    rel = cli(["release", "--json"])
    assert rel.code == 0 and [h["fingerprint"] for h in rel.json["released"]] == [held_fp], rel.output
    assert rel.json["holds"] == [] and "\nhold:" not in cli(["status"]).stdout
    assert cli(["release"]).stdout.strip() == "no rollback hold to release"
    r = cli(["run", "--data", str(SAMPLE), "--json"])
    assert r.code == 0 and r.json["outcome"] == "promoted", r.output
    events = [json.loads(line) for line in (cli.store / "history.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events].count("release") == 1


def test_new_data_is_judged_as_usual_and_rolling_forward_ends_a_hold(cli, tmp_path, sample_examples):
    a = promoted(cli, write_data(tmp_path / "a.json", few(sample_examples, 12)))
    b = promoted(cli, SAMPLE)
    second = b["candidate"]["model"]
    assert cli(["rollback"]).code == 0
    more = sample_examples + [{"text": f"please book a table for {n} people", "intent": "book_table", "entities": []}
                              for n in ("two", "three", "four", "five")]
    r = cli(["run", "--data", str(write_data(tmp_path / "c.json", more)), "--json"])
    assert r.code == 0 and r.json["data"]["fingerprint"] != b["data"]["fingerprint"], r.output
    check = next(c for c in r.json["decision"]["checks"] if c["name"] == "rollback_hold")
    assert not check["enabled"] and "rollback_hold" not in r.json["decision"]["reason"]
    left = r.json if r.json["outcome"] == "promoted" else a  # the model the roll forward leaves

    r = cli(["release", "model_nope"])
    assert r.code == 2 and "release: no hold on 'model_nope'; held: " in r.stderr and second in r.stderr, r.output
    fwd = cli(["rollback", second])
    assert fwd.code == 0 and "the hold on" in fwd.stdout and "ended (rolled forward to it)" in fwd.stdout, fwd.output
    assert active_of(cli) == second
    holds = json.loads((cli.store / "holds.json").read_text())["holds"]
    assert [h["fingerprint"] for h in holds] == [left["data"]["fingerprint"]]  # the data it left is held now
