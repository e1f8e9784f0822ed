"""``nlu-ci run --messages``: the report's ``live`` section and the ``max_live_disagreement`` gate check, in a
real run against the store's active model."""
from __future__ import annotations

import json
import re

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
    # the inbox counts reach the metrics (numbers only: no message in the file)
    prom = next(p for p in (inbox_store["store"] / "metrics.prom", inbox_store["store"].parent / "metrics.prom")
                if p.exists())
    text = prom.read_text()
    counts = {m.group(1): float(m.group(2)) for m in re.finditer(r'^nlu_ci_inbox_messages\{[^}]*kind="(\w+)"[^}]*\} (\S+)',
                                                                 text, re.M)}
    box = live["inbox"]
    assert counts == {"read": 15, "training_examples": box["training_examples"], "unique": box["unique"],
                      "left_out": box["left_out"], "listed": len(box["entries"])}, counts
    assert not any(e["text"] in text for e in box["entries"])


def test_the_review_page_shows_live_agreement_and_the_top_of_the_inbox(inbox_store, tmp_path):
    import html as html_lib

    from nlu_ci.messages import live as live_module

    db = tmp_path / "rasa.db"
    tracker.fill(f"sqlite:///{db}")
    examples = json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]
    data = write_data(tmp_path / "data.json", [e for e in examples if e["intent"] != "thank_you"])  # not skipped
    r = run_cli(["run", "--dry-run", "--json", "--data", str(data), "--messages", f"sqlite:///{db}"],
                inbox_store["env"])
    assert r.code == 0, r.output
    live = r.json["live"]
    box = live["inbox"]
    texts = [e["text"] for e in box["entries"]]
    assert 0 < len(texts) <= live_module.INBOX_TOP and set(tracker.UNCERTAIN) <= set(texts), texts
    assert not set(tracker.TRAINING_VARIANTS) & set(texts) and box["training_examples"] >= len(tracker.TRAINING_VARIANTS)
    assert all(e["why"] and e["intent"] for e in box["entries"])
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(r.json))
    out = tmp_path / "page.html"
    page = run_cli(["report", str(saved), "--output-file", str(out)], inbox_store["env"])
    assert page.code == 0, page.output
    text = html_lib.unescape(out.read_text(encoding="utf-8"))
    assert "Live agreement on production messages" in text and "Inbox: messages to annotate first" in text
    words = " ".join(re.sub(r"<[^>]+>", "", text).split())
    assert (f"Candidate and active disagree on {live['disagreeing']} of {live['messages']} recent unique messages "
            f"({100 * live['disagreement']:.1f}%)") in words
    for e in box["entries"]:  # each entry's row: text, suggested intent, confidence, why ranked
        row = f"{e['text']}</td><td class=\"num\">{e['count']}</td><td>{e['intent']}</td>\n" \
              f"<td class=\"num\">{e['confidence']:.2f}</td>"
        assert row in text and "; ".join(e["why"]) in text, e
    assert tracker.EMAIL not in text and "<email>" in text  # masked as read, shown masked
    from nlu_ci.outputs.slack import message_lines

    slack = "\n".join(message_lines(r.json))  # the Slack message of the same report: no production message
    assert slack and not any(e["text"] in slack for e in box["entries"])
    assert not any(t in slack for m in live["moves"] for t in m["examples"])
