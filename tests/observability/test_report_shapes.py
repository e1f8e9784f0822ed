"""Every shape a run report takes (promoted, rejected, skipped, locked, failed, dry_run, check), built through the
typed model, and every channel rendered from it: Prometheus text, the Slack message, the review page, the
Markdown summary, the Event on the Job, the JSON file and the human summary."""
from __future__ import annotations

import json

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from reports import make_report, scores

from nlu_ci.outputs import kubernetes_event, prometheus, slack
from nlu_ci.report import document, markdown
from nlu_ci.report.model import OUTCOMES, ModelScores, RunReport
from nlu_ci.review import page

SHAPES = ("promoted", "rejected", "skipped", "locked", "failed", "dry_run", "check")


def shape(name: str) -> RunReport:
    """The report a run of that kind makes (what each outcome has and has not, as the pipeline fills it)."""
    if name == "skipped":
        report = make_report("skipped", candidate=None)
        report.active = scores("model_20261119-020000", 0.85)
    elif name in ("locked", "failed"):
        report = make_report(name, candidate=None, active=None,
                             error="locked by another run (pid 7)" if name == "locked" else "DataError: bad JSON")
        if name == "locked":
            report.data = None
    elif name == "check":
        report = make_report("dry_run", failed_check="min_improvement")
        report.sections["check"] = {"exit_code": 3}
    else:
        report = make_report(name, failed_check="min_improvement" if name == "rejected" else None)
        if name == "dry_run":
            report.decision.promote = True  # the gate would promote it
    report.sections["review_page"] = {"path": "/store/p/reports/x.html", "url": None}
    return report


def gauges(report: RunReport) -> dict:
    text = generate_latest(prometheus.build_registry(report)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize("name", SHAPES)
def test_every_channel_renders_every_shape(name):
    report = shape(name)
    outcome = report.outcome
    assert outcome in OUTCOMES

    found = gauges(report)
    assert found[("nlu_ci_run_outcome", (("outcome", outcome),))] == 1
    assert sum(v for (n, _), v in found.items() if n == "nlu_ci_run_outcome") == 1
    has_candidate = ("nlu_ci_intent_f1", (("model", "candidate"),)) in found
    assert has_candidate == (report.candidate is not None)
    assert (("nlu_ci_gate_check_passed", (("check", "min_improvement"),)) in found) == (name in ("rejected", "check"))

    message = slack.build_message(report)
    assert f"nlu-ci [p]: {outcome.upper()}" in message["text"]
    assert ("FAILED check min_improvement" in message["text"]) == (name in ("rejected", "check"))
    assert "review page: /store/p/reports/x.html" in message["text"]

    html = page.render(report, [])
    assert '<span class="badge' in html and outcome in html
    if report.active is not None:
        assert report.active.model in html
    if report.error:
        assert report.error.split(":")[0] in html

    md = markdown.render(report)
    verdict = {"promoted": "the gate passes", "rejected": "the gate fails", "skipped": "nothing to check",
               "locked": "the store was locked", "failed": "the check could not run", "dry_run": "the gate passes",
               "check": "the gate fails"}[name]
    assert md.startswith("## ") and verdict in md
    assert ("`min_improvement`" in md) == (name in ("rejected", "check"))  # a code span: shown as written

    event = kubernetes_event.event_message(report)
    assert event.startswith({"promoted": "promoted model_20261120", "rejected": "kept model_20261119",
                             "skipped": "skipped: data and config unchanged since the active model model_20261119",
                             "locked": "locked: locked by another run", "failed": "failed (exit 1): DataError",
                             "dry_run": "dry run: model_20261120-020000 intent_f1 0.900, would promote",
                             "check": "dry run: model_20261120-020000 intent_f1 0.900, would not promote"}[name]), event

    assert document.summary(report).startswith(f"nlu-ci run [p]: {outcome.upper()}")
    stored = json.loads(document.to_json(report))
    assert RunReport.from_dict(stored).to_dict() == stored  # the JSON reads back to the same report
    assert set(stored) == set(RunReport.FIELDS) | set(report.sections)


def test_the_json_keys_of_a_trained_run_are_the_pipelines():
    """``to_dict`` of a candidate built from an evaluation: the keys the report has always had."""

    class Result:
        def summary(self):
            return {"intent_f1": 0.9, "per_intent": {}, "per_entity": {}, "evaluated_by": "nlu-ci"}

    section = ModelScores.from_result("model_x", "/m/model_x", Result(), config="c.yml").to_dict()
    assert list(section) == ["model", "path", "intent_f1", "intent_accuracy", "intent_macro_f1", "intent_precision",
                             "entity_f1", "entity_precision", "entity_recall", "entity_token_f1",
                             "entity_token_precision", "entity_token_accuracy", "per_intent", "per_entity",
                             "evaluated_by", "config"]
    assert list(ModelScores.from_result("m", None).to_dict())[-1] == "per_intent"  # not evaluated: no per_entity


def test_a_malformed_stored_report_reads_as_missing_sections():
    report = RunReport.from_dict({"outcome": "rejected", "candidate": "not a dict", "decision": {"checks": [None, 3]},
                                  "durations": {"total": "x"}, "data": [1]})
    assert report.candidate is None and report.data is None and report.decision.checks == []
    assert slack.build_message(report)["text"].startswith(":warning: nlu-ci [default]: REJECTED")
    assert "rejected" in page.render(report, [])
