"""`nlu-ci status` tells the truth: runs in time order, each promotion once, a reason for every line, what the next
run will do (bootstrap with the policy's absolute checks; skip or gate; a hold), through the real CLI."""
from __future__ import annotations

import json

from nlu_ci.registry import holds
from nlu_ci.registry.store import ModelStore
from support.data import ROOT, cli_env, run_cli


def status(models, *args: str, **env: str):
    return run_cli(["status", *args], cli_env(models, **env), timeout=120)


def test_history_in_time_order_each_promotion_once_and_no_empty_reason(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.ensure()
    # what two runs write: the promotion line during the run, the run line when it ends (seconds later)
    for entry in ({"event": "promotion", "at": "2026-12-01T03:00:40Z", "model": "model_a", "previous": None,
                   "reason": "no active model: the candidate becomes the first active model"},
                  {"event": "run", "outcome": "promoted", "started_at": "2026-12-01T03:00:00Z",
                   "candidate": "model_a", "active": None,
                   "reason": "no active model: the candidate becomes the first active model"},
                  {"event": "run", "outcome": "skipped", "started_at": "2026-12-02T03:00:00Z", "active": "model_a",
                   "reason": None, "error": None},
                  {"event": "rollback", "at": "2026-12-02T09:00:00Z", "model": "model_0", "previous": "model_a",
                   "outcome": "rollback"}):
        store.append_history(entry)
    r = status(tmp_path / "models", "--last", "10")
    assert r.code == 0, r.output
    lines = r.stdout.split("last runs:\n", 1)[1].splitlines()
    assert [line.split()[:2] for line in lines] == [["2026-12-01T03:00:00Z", "promoted"],
                                                    ["2026-12-02T03:00:00Z", "skipped"],
                                                    ["2026-12-02T09:00:00Z", "rollback"]]
    assert "model_a: no active model" in lines[0]
    assert lines[1].endswith("same data and config as the active model model_a")
    assert lines[2].endswith("model_0 (was model_a)")
    js = status(tmp_path / "models", "--json", "--last", "2").json
    assert [h.get("outcome") for h in js["history"]] == ["skipped", "rollback"]


def test_next_run_says_bootstrap_with_the_policy_it_will_apply(tmp_path):
    models = tmp_path / "models"
    r = status(models)
    assert r.code == 0 and "next run: bootstraps: trains a first model and promotes it if it has intent F1 >= 0 " \
                          "(policy built-in)" in r.stdout, r.output
    sample = ROOT / "data" / "sample" / "policy.yml"
    r = status(models, NLU_CI_POLICY=str(sample))
    assert "and all 8 must-pass utterances right" in r.stdout, r.output
    bad = tmp_path / "bad.yml"
    bad.write_text("min_improvment: 0.1\n")
    r = status(models, NLU_CI_POLICY=str(bad))
    assert r.code == 0 and "next run: fails before training: " in r.stdout and "unknown key" in r.stdout, r.output


def test_next_run_with_an_active_model_and_a_hold(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.ensure()
    for name, fp in (("model_20261201-030000", "sha256:" + "a" * 64), ("model_20261202-030000", "sha256:" + "b" * 64)):
        staged = store.staging_dir(name)
        staged.mkdir(parents=True)
        (staged / "metadata.json").write_text("{}")
        store.commit(staged, {"fingerprint": fp, "metrics": {"intent_f1": 0.9}})
    store.activate("model_20261201-030000")
    r = status(tmp_path / "models")
    assert "next run: skipped if data and config are unchanged since model_20261201-030000 (fingerprint " \
           "sha256:aaaaaaaaaaaa); else trains a candidate and promotes it if every check passes (intent F1 at least " \
           "active - 0.01" in r.stdout, r.output
    assert "\nhold:" not in r.stdout and "rollback_hold" not in r.stdout
    holds.add(store, "sha256:" + "b" * 64, "model_20261202-030000", "model_20261201-030000")
    r = status(tmp_path / "models")
    assert "hold:     data fingerprint sha256:bbbbbbbbbbbb is held: model_20261202-030000 was rolled back (to " \
           "model_20261201-030000)" in r.stdout, r.output
    assert "a candidate of held data is rejected (rollback_hold)" in r.stdout
    assert json.loads(status(tmp_path / "models", "--json").stdout)["holds"][0]["model"] == "model_20261202-030000"
