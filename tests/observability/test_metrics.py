"""nlu_ci.outputs.prometheus (the Prometheus channel): every gauge from a run report, the textfile, and pushes to a real Pushgateway."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from reports import finished, make_report

from nlu_ci.errors import RuntimeFailure
from nlu_ci.outputs import prometheus as metrics
from support.http import hanging_port, refusing_port
from support.servers import MISSING, PUSHGATEWAY_BIN, Pushgateway

PG_USER, PG_PASSWORD = "nlu-ci", "pg-test-password-7"
PG_HASH = "$2b$05$.IvPFlfIoDTzqJcSGxKaEuH8znm4gdwiWJUajYVhf3SGdFcXGrGRa"  # bcrypt of PG_PASSWORD


def samples(text: str, name_prefix: str = "nlu_ci_") -> dict[tuple, float]:
    """{(name, ((label, value), ...)): value} for the nlu_ci series in a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(name_prefix):
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("job", "instance", "project")))
                out[(s.name, labels)] = s.value
    return out


def value(found: dict, name: str, **labels) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def publish(report, store: Path, **kw):
    return metrics.publish(report, store_dir=store, pushgateway_url=kw.pop("url", None), **kw)


def test_every_gauge_from_a_promoted_report(tmp_path):
    report = make_report("promoted", candidate=0.91, active=0.87, p_value=0.021, train=412, test=103)
    report.candidate.scores["per_intent"] = {"greet": {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 10}}
    report["live"] = {"messages": 40, "disagreement": 0.075, "disagreeing": 3, "read": 55, "moves": [
        {"from": "greet", "to": "bye", "count": 3, "examples": ["hey there you"]}],
        "inbox": {"unique": 30, "training_examples": 9, "left_out": 0, "entries": [
            {"text": "hey there you", "count": 2, "intent": "greet", "confidence": 0.4}]}}
    result = publish(report, tmp_path)
    assert result.ok and result.textfile == tmp_path / "metrics.prom" and not result.push_attempted
    found = samples(result.textfile.read_text())

    assert value(found, "nlu_ci_intent_f1", model="candidate") == 0.91
    assert value(found, "nlu_ci_intent_f1", model="active") == 0.87
    assert value(found, "nlu_ci_entity_f1", model="candidate") == 0.8
    assert {o: value(found, "nlu_ci_run_outcome", outcome=o) for o in metrics.OUTCOMES} == {
        "promoted": 1, "rejected": 0, "skipped": 0, "locked": 0, "failed": 0, "dry_run": 0}
    for stage, seconds in report["durations"].items():
        if stage != "total":
            assert value(found, "nlu_ci_stage_duration_seconds", stage=stage) == seconds
    assert value(found, "nlu_ci_stage_duration_seconds", stage="total") is None
    assert value(found, "nlu_ci_run_duration_seconds") == report["durations"]["total"]
    fb = report.fallback  # the fallback section: coverage and threshold at the target precision, out-of-scope answered
    for model in ("candidate", "active"):
        part = fb.model(model)
        assert value(found, "nlu_ci_fallback_coverage", model=model) == part["recommended"]["coverage"]
        assert value(found, "nlu_ci_fallback_recommended_threshold", model=model) == part["recommended"]["threshold"]
        assert value(found, "nlu_ci_out_of_scope_answered", model=model) == part["out_of_scope_answered"]
    end = finished(report)
    assert value(found, "nlu_ci_last_run_timestamp_seconds") == end
    assert value(found, "nlu_ci_last_success_timestamp_seconds") == end
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") == end
    assert value(found, "nlu_ci_training_examples") == 412
    assert value(found, "nlu_ci_test_examples") == 103
    assert value(found, "nlu_ci_data_repaired_examples") == 2
    assert value(found, "nlu_ci_mcnemar_p_value") == 0.021
    assert value(found, "nlu_ci_gate_check_passed", check="min_intent_f1") == 1
    assert value(found, "nlu_ci_gate_check_passed", check="significance") == 1
    # disabled checks never block, so they are not exported as passed/failed
    assert value(found, "nlu_ci_gate_check_passed", check="bootstrap_ci") is None
    assert value(found, "nlu_ci_live_messages") == 40 and value(found, "nlu_ci_live_disagreement") == 0.075
    assert {k: value(found, "nlu_ci_inbox_messages", kind=k) for k in ("read", "training_examples", "unique",
                                                                       "left_out", "listed")} == {
        "read": 55, "training_examples": 9, "unique": 30, "left_out": 0, "listed": 1}
    assert "hey there you" not in result.textfile.read_text()  # counts only, never a message
    # every documented metric has HELP text in the file
    text = result.textfile.read_text()
    for name in metrics.METRICS:
        assert f"# HELP {name} " in text


def test_rejected_report_exports_the_failed_check(tmp_path):
    report = make_report("rejected", candidate=0.70, active=0.88, failed_check="per_intent_max_drop")
    found = samples(publish(report, tmp_path).textfile.read_text())
    assert value(found, "nlu_ci_run_outcome", outcome="rejected") == 1
    assert value(found, "nlu_ci_run_outcome", outcome="promoted") == 0
    assert value(found, "nlu_ci_gate_check_passed", check="per_intent_max_drop") == 0
    assert value(found, "nlu_ci_gate_check_passed", check="min_intent_f1") == 1
    assert value(found, "nlu_ci_last_success_timestamp_seconds") == finished(report)
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") is None  # never promoted


def test_failed_run_leaves_out_what_it_does_not_know(tmp_path):
    report = make_report("failed", candidate=None, active=None, error="training crashed")
    report["data"] = None
    found = samples(publish(report, tmp_path).textfile.read_text())
    assert value(found, "nlu_ci_run_outcome", outcome="failed") == 1
    names = {name for name, _ in found}
    for absent in ("nlu_ci_intent_f1", "nlu_ci_entity_f1", "nlu_ci_mcnemar_p_value", "nlu_ci_gate_check_passed",
                   "nlu_ci_training_examples", "nlu_ci_last_success_timestamp_seconds"):
        assert absent not in names, absent
    assert value(found, "nlu_ci_last_run_timestamp_seconds") == finished(report)


def test_timestamps_carry_forward_through_the_textfile(tmp_path):
    promoted = make_report("promoted", day=0)
    rejected = make_report("rejected", day=1, failed_check="min_improvement")
    failed = make_report("failed", day=2, candidate=None, active=None, error="boom")
    for report in (promoted, rejected, failed):
        result = publish(report, tmp_path)
    found = samples(result.textfile.read_text())
    assert value(found, "nlu_ci_last_run_timestamp_seconds") == finished(failed)
    assert value(found, "nlu_ci_last_success_timestamp_seconds") == finished(rejected)
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") == finished(promoted)


def test_previous_from_the_history_wins_when_newer(tmp_path):
    publish(make_report("promoted", day=0), tmp_path)           # textfile: promotion at day 0
    newer = make_report("promoted", day=5)
    previous = {"last_success": newer["finished_at"], "last_promotion": finished(newer)}
    result = publish(make_report("failed", day=6, candidate=None), tmp_path, previous=previous)
    found = samples(result.textfile.read_text())
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") == finished(newer)
    assert value(found, "nlu_ci_last_success_timestamp_seconds") == finished(newer)


def test_history_restores_timestamps_when_the_textfile_is_lost(tmp_path):
    promoted, rejected = make_report("promoted", day=0), make_report("rejected", day=1)
    lines = [{"event": "run", "outcome": "promoted", "finished_at": promoted["finished_at"]},
             {"event": "promotion", "at": promoted["finished_at"], "model": "m1"},
             {"event": "run", "outcome": "rejected", "finished_at": rejected["finished_at"]},
             {"event": "run", "outcome": "failed", "finished_at": make_report("failed", day=2)["finished_at"]},
             {"event": "rollback", "at": make_report("failed", day=3)["finished_at"]}]
    (tmp_path / "history.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    found = samples(publish(make_report("locked", day=4, candidate=None), tmp_path).textfile.read_text())
    assert value(found, "nlu_ci_last_success_timestamp_seconds") == finished(rejected)
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") == finished(promoted)
    assert value(found, "nlu_ci_run_outcome", outcome="locked") == 1


def test_unreadable_previous_textfile_is_ignored(tmp_path, caplog):
    (tmp_path / "metrics.prom").write_text("this is { not prometheus text\n")
    with caplog.at_level(logging.WARNING):
        result = publish(make_report("rejected"), tmp_path)
    assert result.ok
    assert "ignoring unreadable" in caplog.text


# ------------------------------------------------------------------------------------------ Pushgateway


def test_push_to_a_real_pushgateway_replaces_the_group(pushgateway, tmp_path):
    result = publish(make_report("promoted", project="shop"), tmp_path, url=pushgateway.url)
    assert result.pushed and result.ok and result.url == pushgateway.url
    text = pushgateway.metrics_text()
    assert 'nlu_ci_intent_f1{instance="",job="nlu_ci",model="candidate",project="shop"} 0.9' in text
    groups = pushgateway.groups()
    assert [g["labels"] for g in groups] == [{"job": "nlu_ci", "project": "shop"}]

    # the next run (failed, no candidate) replaces the whole group: no stale F1 remains
    failed = make_report("failed", project="shop", day=1, candidate=None, active=None, error="x")
    assert publish(failed, tmp_path, url=pushgateway.url).pushed
    found = samples(pushgateway.metrics_text())
    assert value(found, "nlu_ci_intent_f1", model="candidate") is None
    assert value(found, "nlu_ci_run_outcome", outcome="failed") == 1
    assert value(found, "nlu_ci_run_outcome", outcome="promoted") == 0
    # ...while the promotion time survives the failed run
    assert value(found, "nlu_ci_last_promotion_timestamp_seconds") == pytest.approx(
        finished(make_report("promoted", project="shop")))

    # another project is its own group
    assert publish(make_report("rejected", project="bank"), tmp_path / "bank", url=pushgateway.url).pushed
    assert sorted(g["labels"]["project"] for g in pushgateway.groups()) == ["bank", "shop"]


def test_pushgateway_down_is_a_warning_and_strict_is_a_failure(tmp_path, caplog):
    with refusing_port() as port:  # bound, not listening: nothing answers there
        url = f"http://127.0.0.1:{port}"
        with caplog.at_level(logging.WARNING, logger="nlu_ci.outputs.prometheus"):
            result = publish(make_report("promoted"), tmp_path, url=url, timeout=2)
        assert result.push_attempted and not result.pushed and not result.ok
        assert result.push_error.startswith(f"cannot push metrics to Pushgateway {url}: ")
        assert "\n" not in result.push_error
        assert result.push_error in caplog.text
        assert result.textfile.exists()  # the textfile is still written

        with pytest.raises(RuntimeFailure, match="cannot push metrics to Pushgateway"):
            publish(make_report("promoted"), tmp_path, url=url, timeout=2, strict=True)


def test_push_times_out(tmp_path):
    with hanging_port() as port:  # accepts connections into the backlog, never answers
        t0 = time.monotonic()
        result = publish(make_report("promoted"), tmp_path, url=f"http://127.0.0.1:{port}", timeout=0.5)
        elapsed = time.monotonic() - t0
    assert not result.pushed and "timed out" in result.push_error.lower()
    assert elapsed < 5


def test_unwritable_store_is_reported_and_strict_fails(tmp_path):
    blocker = tmp_path / "store"
    blocker.write_text("a file where the store directory should be")
    result = publish(make_report("rejected"), blocker)
    assert result.textfile is None and "cannot write metrics file" in result.textfile_error and not result.ok
    with pytest.raises(RuntimeFailure, match="cannot write metrics file"):
        publish(make_report("rejected"), blocker, strict=True)


@pytest.fixture
def auth_pushgateway(tmp_path):
    if PUSHGATEWAY_BIN is None:
        pytest.skip(f"prometheus-pushgateway {MISSING}")
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  {PG_USER}: '{PG_HASH}'\n")
    server = Pushgateway(tmp_path / "pg", web_config=web, auth=(PG_USER, PG_PASSWORD))
    yield server
    server.stop()


def test_basic_auth_push_and_no_password_in_errors(auth_pushgateway, tmp_path, caplog):
    gateway = auth_pushgateway
    assert requests.get(f"{gateway.url}/metrics", timeout=5).status_code == 401  # auth really is required

    ok = publish(make_report("promoted"), tmp_path, url=gateway.url, username=PG_USER, password=PG_PASSWORD)
    assert ok.pushed, ok.push_error
    assert value(samples(gateway.metrics_text(auth=(PG_USER, PG_PASSWORD))),
                 "nlu_ci_run_outcome", outcome="promoted") == 1

    # credentials inside the URL work too, and never show up in the reported URL
    embedded = gateway.url.replace("http://", f"http://{PG_USER}:{PG_PASSWORD}@")
    result = publish(make_report("rejected"), tmp_path, url=embedded)
    assert result.pushed, result.push_error
    assert result.url == gateway.url

    with caplog.at_level(logging.DEBUG):
        bad = publish(make_report("rejected"), tmp_path, url=embedded.replace(PG_PASSWORD, PG_PASSWORD + "-wrong"))
    assert not bad.pushed and "401" in bad.push_error
    for text in (bad.push_error, bad.url, caplog.text):
        assert PG_PASSWORD not in text


def test_the_active_model_after_the_run_and_its_per_intent_f1(tmp_path):
    """nlu_ci_active_model_info names the model active once the run ended (the serving alerts join on it)."""
    promoted = samples(publish(make_report("promoted", candidate=0.91, active=0.87), tmp_path / "p").textfile.read_text())
    assert value(promoted, "nlu_ci_active_model_info", model="model_20261120-020000") == 1
    assert value(promoted, "nlu_ci_active_model_info", model="model_20261119-020000") is None
    rejected_report = make_report("rejected", candidate=0.70, active=0.88)
    rejected_report.active.scores["per_intent"] = {"greet": {"f1": 0.95, "support": 20}, "goodbye": {"f1": 0.5}}
    rejected = samples(publish(rejected_report, tmp_path / "r").textfile.read_text())
    assert value(rejected, "nlu_ci_active_model_info", model="model_20261119-020000") == 1
    assert value(rejected, "nlu_ci_active_model_info", model="model_20261120-020000") is None
    assert value(rejected, "nlu_ci_active_intent_f1", intent="greet") == 0.95
    assert value(rejected, "nlu_ci_active_intent_f1", intent="goodbye") == 0.5
    failed = samples(publish(make_report("failed", candidate=None, active=None), tmp_path / "f").textfile.read_text())
    assert not [s for s in failed if s[0] == "nlu_ci_active_model_info"]


def test_live_gauges_only_with_compared_messages(tmp_path):
    """No live section (no --messages): neither gauge; messages but no active model: the count, no share."""
    found = samples(publish(make_report("promoted", candidate=0.9, active=0.8), tmp_path / "a").textfile.read_text())
    assert not [s for s in found if s[0].startswith("nlu_ci_live_")]
    report = make_report("promoted", candidate=0.9, active=None)
    report["live"] = {"messages": 12, "disagreement": None, "disagreeing": 0, "moves": []}
    found = samples(publish(report, tmp_path / "b").textfile.read_text())
    assert value(found, "nlu_ci_live_messages") == 12 and value(found, "nlu_ci_live_disagreement") is None
