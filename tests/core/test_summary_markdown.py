"""The Markdown summary of `nlu-ci check`: the verdict, the numbers side by side, the failed checks by name,
and data (intent names, check details) that can never inject Markdown or HTML into a pull-request comment."""
from __future__ import annotations

import re

from nlu_ci.report import markdown as summary_markdown
from nlu_ci.report.model import CheckResult, DataInfo, DecisionRecord, ModelScores, RunReport


def report(promote: bool, intent: str = "greet") -> RunReport:
    checks = [CheckResult("min_improvement", promote, "intent F1 0.7000 vs 0.8800 (-0.1800); needs > 0"),
              CheckResult("bootstrap_ci", False, "report only", enabled=False)]
    per = {intent: {"f1": 0.5, "support": 4}, "bye": {"f1": 0.9, "support": 3}}
    per_active = {intent: {"f1": 0.9, "support": 4}, "bye": {"f1": 0.9, "support": 3}}
    return RunReport(outcome="dry_run", project="shop", exit_code=0,
                     data=DataInfo("sha256:abc", train_examples=80, test_examples=20, intents=[intent, "bye"]),
                     candidate=ModelScores("model_b", None, {"intent_f1": 0.70, "intent_accuracy": 0.7, "per_intent": per}),
                     active=ModelScores("model_a", None, {"intent_f1": 0.88, "intent_accuracy": 0.9,
                                                          "per_intent": per_active}),
                     decision=DecisionRecord(promote, "rejected by min_improvement", checks),
                     sections={"review_page": {"path": "/s/reports/x.html", "url": None}})


def test_a_failing_gate_names_its_checks_and_the_intents_that_lost_f1():
    md = summary_markdown.render(report(False))
    assert md.startswith("## ❌ nlu-ci check [shop]: the gate fails")
    assert "**Failed checks:** `min_improvement`" in md  # nothing escaped inside a code span
    assert "| min\\_improvement | **FAIL** |" in md and "| bootstrap\\_ci | info |" in md
    assert "| intent F1 | 0.7000 | 0.8800 | -0.1800 |" in md
    assert "| greet | 0.5000 | -0.4000 | 4 |" in md and "| bye |" not in md   # only intents that lost F1
    assert "`/s/reports/x.html`" in md


def test_a_passing_gate():
    md = summary_markdown.render(report(True))
    assert md.startswith("## ✅ nlu-ci check [shop]: the gate passes") and "Failed checks" not in md


def test_data_cannot_inject_markup():
    evil = "<img src=x onerror=alert(1)>|[click](http://evil)"
    md = summary_markdown.render(report(False, intent=evil))
    # CommonMark: a backslash-escaped character is literal text, never the start of HTML or a link
    assert not re.search(r"(?<!\\)<img", md) and not re.search(r"(?<!\\)\]\(http", md)
    assert "\\<img src=x onerror=alert\\(1\\)\\>\\|\\[click\\]\\(http://evil\\)" in md


def test_check_exit_codes():
    from nlu_ci.commands.check import exit_code

    assert exit_code(report(True)) == 0
    assert exit_code(report(False)) == 3
    assert exit_code({"outcome": "skipped", "exit_code": 0, "decision": None}) == 0
    assert exit_code({"outcome": "locked", "exit_code": 0}) == 1          # nothing was checked
    assert exit_code({"outcome": "failed", "exit_code": 2}) == 2


def test_code_spans_show_their_text_as_written_and_fence_backticks():
    from nlu_ci.report.mdcode import code

    rep = report(False)
    rep.active = ModelScores("model_20261202-031500_a", None, {"intent_f1": 0.9})
    md = summary_markdown.render(rep)
    assert "Active model: `model_20261202-031500_a`." in md
    assert "\\_" not in md.split("Active model:")[1].split("\n")[0]
    # a backtick inside: a longer fence (CommonMark), padded when the text starts or ends with one
    assert code("a`b") == "``a`b``"
    assert code("`x`") == "`` `x` ``"
    assert code("a``b") == "```a``b```"
    assert code("x\n  y") == "`x y`"


def test_check_sections_list_relabelled_examples_old_to_new():
    from nlu_ci.check import summary as check_summary

    rep = {"check": {"judged_by": {"policy": None, "base_data": "/ci/base/data", "active_model_url": "http://m:8080"}},
           "data": {"base": {"test_examples": 40}},
           "data_diff": {"against": "the active model", "added": 3, "removed": 1, "relabelled": 2,
                         "relabelled_examples": [{"text": "i want a *pizza*", "old_intent": "order_pizza",
                                                  "new_intent": "greet", "relabelled": True},
                                                 {"text": "hi", "old_intent": "greet", "new_intent": "goodbye",
                                                  "relabelled": True}]}}
    md = check_summary.render(rep, shown=1)
    assert "3 added, 1 removed, **2 relabelled**" in md
    assert "| i want a \\*pizza\\* | order\\_pizza | greet |" in md  # table cells escaped (not code)
    assert "| … and 1 more | | |" in md and "| hi |" not in md
    assert "policy: the built-in policy (the base branch's)" in md
    assert "`http://m:8080`" in md
