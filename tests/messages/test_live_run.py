"""``nlu-ci run --messages``: the report's ``live`` section and the ``max_live_disagreement`` gate check, in a
real run against the store's active model."""
from __future__ import annotations

import json

from support.data import SAMPLE, run_cli, write_data

from . import tracker


def test_run_reports_live_agreement_and_the_policy_check_blocks(inbox_store, tmp_path):
    db = tmp_path / "rasa.db"
    tracker.fill(f"sqlite:///{db}")
    examples = json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]
    # a candidate that never saw thank_you: "thanks so much" (the active model's thank_you) must move
    data = write_data(tmp_path / "data.json", [e for e in examples if e["intent"] != "thank_you"])
    policy = tmp_path / "policy.yml"
    policy.write_text("max_live_disagreement: 0.0\nmin_improvement: off\nper_intent_max_drop: off\n")
    r = run_cli(["run", "--dry-run", "--json", "--data", str(data), "--policy", str(policy),
                 "--messages", f"sqlite:///{db}"], inbox_store["env"])
    assert r.code == 0, r.output
    report = r.json
    live = report["live"]
    assert live["messages"] == 13 and live["read"] == 15  # 15 read; the Oslo question's 3 spellings are one
    assert live["disagreeing"] >= 1 and live["disagreement"] == live["disagreeing"] / 13
    assert any(m["from"] == "thank_you" for m in live["moves"])
    [check] = [c for c in report["decision"]["checks"] if c["name"] == "max_live_disagreement"]
    assert check["enabled"] and not check["passed"] and report["decision"]["promote"] is False
    assert tracker.EMAIL not in r.output  # masked in the live examples too
