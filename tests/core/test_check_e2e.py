"""`nlu-ci check` (pull-request mode) end to end through the real CLI with real rasa_nlu training: the same gate
as the nightly job against the active model, never a promotion, a Markdown summary, exit 3 when the gate fails."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.data import SAMPLE, shuffled_train_labels, write_data


def active_of(store: Path) -> str | None:
    p = store / "ACTIVE"
    return p.read_text().strip() if p.exists() else None


def runs(store: Path) -> list[dict]:
    return [json.loads(x) for x in (store / "history.jsonl").read_text().splitlines() if x.strip()]


def test_worse_branch_data_fails_with_exit_3_and_names_the_failed_checks(cli, tmp_path, sample_examples):
    assert cli(["run", "--data", str(SAMPLE)]).code == 0
    good = active_of(cli.store)
    models_before = sorted(p.name for p in cli.store.iterdir() if p.name.startswith("model_"))
    worse = write_data(tmp_path / "branch.json", shuffled_train_labels(sample_examples, 0.6))
    summary = tmp_path / "summary.md"
    r = cli(["check", "--data", str(worse), "--summary", str(summary)])
    assert r.code == 3, r.output
    md = r.stdout
    assert md.startswith("## ❌ nlu-ci check [default]: the gate fails")
    assert summary.read_text() == md
    # the failed checks are named, and the numbers of both models are side by side (same test set as nightly)
    last = json.loads((cli.store / "last_report.json").read_text())
    failed = [c["name"] for c in last["decision"]["checks"] if c["enabled"] and not c["passed"]]
    assert failed and "**Failed checks:** " in md
    for name in failed:
        assert f"`{name}`" in md  # a code span shows the name as written (nothing escaped inside backticks)
        assert f"| {name.replace('_', chr(92) + '_')} | **FAIL** |" in md
    assert f"| intent F1 | {last['candidate']['intent_f1']:.4f} | {last['active']['intent_f1']:.4f} |" in md
    nightly = json.loads((cli.store / good / "nlu_ci.json").read_text())
    assert last["data"]["split"] == nightly["split"]
    assert last["data"]["test_examples"] == nightly["data"]["test_examples"]
    # never a promotion: ACTIVE unchanged, no promotion in the history, the candidate is not stored
    assert last["outcome"] == "dry_run" and active_of(cli.store) == good
    assert [h["model"] for h in runs(cli.store) if h["event"] == "promotion"] == [good]
    assert sorted(p.name for p in cli.store.iterdir() if p.name.startswith("model_")) == models_before
    # the review page of the check is in the store and linked
    page = Path(last["review_page"]["path"])
    assert page.is_file() and page.name.endswith(".html")
    assert str(page).replace("_", "\\_") in md or str(page) in md


def test_better_branch_data_passes_with_exit_0(cli, tmp_path, sample_examples):
    worse = write_data(tmp_path / "nightly.json", shuffled_train_labels(sample_examples, 0.6))
    assert cli(["run", "--data", str(worse)]).code == 0
    active = active_of(cli.store)
    r = cli(["check", "--data", str(SAMPLE), "--json"])
    assert r.code == 0, r.output
    rep = r.json
    assert rep["outcome"] == "dry_run" and rep["decision"]["promote"] is True
    assert rep["candidate"]["intent_f1"] > rep["active"]["intent_f1"]
    assert rep["check"]["exit_code"] == 0 and rep["check"]["judged_by"]["base_data"] is None
    assert active_of(cli.store) == active  # passing is not promoting


def test_check_takes_no_dry_run_flag_and_documents_exit_3():
    from nlu_ci.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["check"]
    flags = {s for a in sub._actions for s in a.option_strings}
    assert {"--data", "--test-data", "--models-dir", "--platform-host", "--summary", "--config"} <= flags
    assert "--dry-run" not in flags and "--pushgateway-url" not in flags
    assert "exit 3: gate failed" in " ".join(parser.format_help().split())


def test_with_a_base_the_branch_is_judged_by_the_base_held_out_set_and_policy(cli, tmp_path, sample_examples):
    """A branch relabelling many examples and shipping a promote-anything policy: by its own labels the active
    model would look bad; judged by the base (its held-out examples, its policy) the gate fails and the diff
    lists the relabelled examples (against the active model's own training examples + the base's held-out).
    Without a base, the relabelled held-out examples keep the active model's recorded labels (check/held_out.py)."""
    base = write_data(tmp_path / "base.json", sample_examples)
    assert cli(["run", "--data", str(base)]).code == 0
    flipped = {e["text"] for i, e in enumerate(sample_examples) if i % 3 == 0}
    intents = sorted({e["intent"] for e in sample_examples})
    noisy = write_data(tmp_path / "noisy.json", [
        dict(e, intent=intents[(intents.index(e["intent"]) + 1) % len(intents)]) if e["text"] in flipped else e
        for e in sample_examples])
    loose = tmp_path / "loose.yml"
    loose.write_text("min_intent_f1: 0.0\nmin_improvement: off\nsignificance: off\nper_intent_max_drop: off\n"
                     "entity_f1: {min: off, max_drop: off}\n")
    own = cli(["check", "--data", str(noisy), "--json"], NLU_CI_POLICY=str(loose))
    assert own.code == 0, own.output[-2000:]  # with its own promote-anything policy: it passes
    # without a base, its relabelled held-out examples are judged by the active model's recorded labels
    # (check/held_out.py, as the nightly run does): the same numbers as with the base; by the branch's labels the
    # active model would score ~0 on them (data_diff.held_out, information only)
    own_diff = own.json["data_diff"]
    assert own_diff["judged_by"] == "the active model's labels" and own_diff["held_out_relabelled"] > 0, own_diff
    assert own_diff["held_out"]["active"]["intent_accuracy"] < 0.2
    r = cli(["check", "--data", str(noisy), "--json"], NLU_CI_POLICY=str(loose), NLU_CI_BASE_DATA=str(base))
    assert r.code == 3, r.output[-2000:]
    rep = r.json
    assert rep["check"]["judged_by"] == {"policy": None, "base_data": str(base), "active_model_url": None}
    assert rep["active"]["intent_f1"] == pytest.approx(own.json["active"]["intent_f1"])  # both: the base's labels
    assert rep["data_diff"]["relabelled"] == len(flipped) and rep["data_diff"]["added"] == 0
    assert "and the base branch's held-out examples" in rep["data_diff"]["against"]
    md = cli(["check", "--data", str(noisy)], NLU_CI_BASE_DATA=str(base)).stdout
    assert f"**{len(flipped)} relabelled**" in md and "policy: the built-in policy (the base branch's)" in md
