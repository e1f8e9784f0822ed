"""monitoring/: the generated files are current, the rules pass promtool, and every dashboard query returns
the expected series from a real Prometheus scraping a real Pushgateway (honor_labels: true)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from dashboard_check import check_dashboard, load_dashboard, serving_targets, targets
from reports import make_report

from nlu_ci.outputs import prometheus as metrics
from support.servers import MONITORING, PROMTOOL_BIN

spec = importlib.util.spec_from_file_location("monitoring_generate", MONITORING / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)

needs_promtool = pytest.mark.skipif(PROMTOOL_BIN is None, reason="promtool not installed (apt-get install prometheus)")


def test_committed_files_are_what_the_generator_writes(tmp_path):
    assert generate.main(["--check"]) == 0
    # and --check notices a difference
    assert generate.main(["--check", "--out-dir", str(tmp_path)]) == 1


def test_thresholds_are_configurable(tmp_path):
    assert generate.main(["--out-dir", str(tmp_path), "--no-promotion-days", "30", "--max-f1-drop", "0.05"]) == 0
    rules = {r["alert"]: r for r in yaml.safe_load((tmp_path / "alerts.rules.yml").read_text())["groups"][0]["rules"]}
    assert rules["NluCiNoPromotion"]["expr"].endswith("> 30 * 86400")
    assert rules["NluCiCandidateFarBelowActive"]["expr"].endswith("> 0.05")
    with pytest.raises(SystemExit):
        generate.main(["--out-dir", str(tmp_path), "--max-f1-drop", "2"])


@needs_promtool
def test_promtool_check_rules():
    out = subprocess.run([PROMTOOL_BIN, "check", "rules", str(MONITORING / "alerts.rules.yml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in generate.rules()['groups'])} rules found" in out.stdout


@needs_promtool
def test_promtool_unit_tests_fire_and_stay_silent():
    out = subprocess.run([PROMTOOL_BIN, "test", "rules", "alerts.test.yml"], cwd=MONITORING,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    # every alert of the rules file has a firing case and a silent case in the tests
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    cases = [case for group in tests for case in group["alert_rule_test"]]
    groups = yaml.safe_load((MONITORING / "alerts.rules.yml").read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    assert {"NluCiServedModelNotActive", "NluCiServingNoGoodPull"} <= {r["alert"] for r in rules}
    for rule in rules:
        mine = [c for c in cases if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']}: no firing case"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']}: no silent case"


@needs_promtool
def test_promtool_notices_a_broken_rule(tmp_path):
    """The unit tests are not vacuous: a rule with the wrong threshold fails them."""
    (tmp_path / "alerts.rules.yml").write_text(
        (MONITORING / "alerts.rules.yml").read_text().replace("> 26 * 3600", "> 28 * 3600"))
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())
    tests["tests"] = tests["tests"][:1]  # the NluCiNoSuccessfulRun cases suffice (and keep this fast)
    (tmp_path / "alerts.test.yml").write_text(yaml.safe_dump(tests))
    out = subprocess.run([PROMTOOL_BIN, "test", "rules", "alerts.test.yml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "NluCiNoSuccessfulRun" in out.stdout + out.stderr


def test_dashboard_is_importable_json():
    dashboard = load_dashboard()
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["Serving"] and rows[0]["panels"] == []  # not collapsed
    assert dashboard["uid"] == "nlu-ci" and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert "nlu_ci_last_run_timestamp_seconds" in variables["project"]["query"]["query"]
    cells = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
    for _, target in targets(dashboard):
        assert 'job="nlu_ci"' in target["expr"] and 'project=~"$project"' in target["expr"]
    for panel, target in serving_targets(dashboard):  # serve's and serve-models' series, per project
        assert 'project=~"$project"' in target["expr"] or "nlu_ci_model_server_requests_total" in target["expr"], \
            (panel["title"], target["expr"])
    # every metric the job exports is shown somewhere
    exprs = " ".join(t["expr"] for _, t in targets(dashboard))
    shown = {name for name in metrics.METRICS if name in exprs}
    assert shown == set(metrics.METRICS)


def test_every_metric_is_documented():
    for doc in (MONITORING.parent / "README.md", MONITORING.parent / "docs" / "observability.md"):
        text = doc.read_text()
        missing = [name for name in metrics.METRICS if f"`{name}`" not in text]
        assert not missing, f"{doc.name} does not document {missing}"


def _now_report(outcome: str, at: datetime, **kw) -> dict:
    report = make_report(outcome, project="shop", **kw)
    report["started_at"] = (at - timedelta(seconds=report["durations"]["total"])).isoformat()
    report["finished_at"] = at.isoformat()
    return report


def test_every_panel_query_after_promote_reject_fail(prometheus_stack, tmp_path):
    """publish() three runs into a real Pushgateway; after each, wait for Prometheus to scrape it; then every
    panel target evaluated at each of those moments returns exactly the series and values of that run."""
    gateway, prom = prometheus_stack
    now = datetime.now(UTC)
    reports = [
        _now_report("promoted", now - timedelta(seconds=30), candidate=0.91, active=None, p_value=None),
        _now_report("rejected", now - timedelta(seconds=20), candidate=0.55, active=0.91, p_value=0.0004,
                    failed_check="min_improvement", durations={"load": 0.4, "train": 12.5, "evaluate": 2.0}),
        _now_report("failed", now - timedelta(seconds=10), candidate=None, active=None, error="boom"),
    ]
    reports[2]["data"] = None
    times, drop_alerts = [], []
    for report in reports:
        result = metrics.publish(report, store_dir=tmp_path / "store", pushgateway_url=gateway.url)
        assert result.pushed, result.push_error
        want = datetime.fromisoformat(report["finished_at"]).timestamp()
        prom.wait_for('nlu_ci_last_run_timestamp_seconds{job="nlu_ci", project="shop"}',
                      lambda r, want=want: len(r) == 1 and float(r[0]["value"][1]) == want)
        times.append(time.time())
        wait_for_rule_evaluation(prom, after=times[-1])
        drop_alerts.append(prom.query('ALERTS{alertname="NluCiCandidateFarBelowActive"}'))
    checked = check_dashboard(prom, load_dashboard(), reports, times, "shop")
    assert checked == 3 * sum(1 for _ in targets(load_dashboard()))

    # the dashboard's project variable lists the project
    values = prom.api("label/project/values", **{"match[]": 'nlu_ci_last_run_timestamp_seconds{job="nlu_ci"}'})
    assert values == ["shop"]

    # the alert rules evaluate cleanly on real series, and the failed run / the F1 drop are noticed
    rules = prom.api("rules")["groups"][0]["rules"]
    assert {r["name"] for r in rules} == {r["alert"] for r in generate.rules()["groups"][0]["rules"]}
    assert all(r["health"] == "ok" for r in rules), json.dumps(rules)[:2000]
    alerts = prom.query('ALERTS{alertname="NluCiLastRunFailed"}')
    assert [(a["metric"]["project"], a["metric"]["alertstate"]) for a in alerts] == [("shop", "pending")]
    # the F1-drop alert was pending only after the rejected run (0.91 - 0.55 > 0.1; the first run has no active)
    assert [[(a["metric"]["project"], a["metric"]["alertstate"]) for a in found] for found in drop_alerts] == [
        [], [("shop", "pending")], []]


def wait_for_rule_evaluation(prom, after: float, timeout: float = 15.0) -> None:
    """Until every alert rule was evaluated at least once after ``after`` (evaluation_interval is 1 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rules = prom.api("rules")["groups"][0]["rules"]
        if all(datetime.fromisoformat(r["lastEvaluation"][:26].rstrip("Z")).replace(tzinfo=UTC)
               .timestamp() > after for r in rules):
            return
        time.sleep(0.2)
    raise AssertionError(f"rules not evaluated after {after}")


# ---------------------------------------------------------------------------- production: locked runs, runbook


def nlu_ci_lines(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("nlu_ci_"))


def test_a_locked_run_leaves_the_pushgateway_group_alone(pushgateway, tmp_path):
    """A locked run did nothing: its publish pushes nothing, so the holder's (or the last run's) F1 series and
    a failed outcome stay, and NluCiLastRunFailed / NluCiCandidateFarBelowActive are not cleared by it."""
    store = tmp_path / "store"
    rejected = make_report("rejected", project="shop", candidate=0.55, active=0.91)
    assert metrics.publish(rejected, store_dir=store, pushgateway_url=pushgateway.url).pushed
    before = nlu_ci_lines(pushgateway.metrics_text())
    assert any(line.startswith("nlu_ci_intent_f1{") for line in before)
    locked = make_report("locked", project="shop", candidate=None, active=None)
    result = metrics.publish(locked, store_dir=store, pushgateway_url=pushgateway.url, strict=True)
    assert result.ok and not result.push_attempted and not result.pushed
    assert nlu_ci_lines(pushgateway.metrics_text()) == before
    # the same for a failed run's group: the outcome stays failed
    failed = make_report("failed", project="shop", candidate=None, active=None, error="boom")
    assert metrics.publish(failed, store_dir=store, pushgateway_url=pushgateway.url).pushed
    metrics.publish(locked, store_dir=store, pushgateway_url=pushgateway.url)
    assert 'nlu_ci_run_outcome{instance="",job="nlu_ci",outcome="failed",project="shop"} 1' in \
        pushgateway.metrics_text()
    # control: a run that did something (skipped) does replace the group
    assert metrics.publish(make_report("skipped", project="shop"), store_dir=store,
                           pushgateway_url=pushgateway.url).pushed
    assert 'outcome="failed",project="shop"} 0' in pushgateway.metrics_text()


def test_every_alert_links_its_runbook_section():
    runbook = (MONITORING.parent / "docs" / "runbook.md").read_text()
    anchors = {line.lstrip("#").strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
    for rule in [r for g in generate.rules()["groups"] for r in g["rules"] if "alert" in r]:
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbook.md#{rule['alert'].lower()}", url
        assert rule["alert"].lower() in anchors, f"docs/runbook.md has no section ## {rule['alert']}"
    custom = generate.rules(runbook="https://git.example.com/nlu-ci/blob/main/docs/runbook.md")
    assert all(r["annotations"]["runbook_url"].startswith("https://git.example.com/")
               for g in custom["groups"] for r in g["rules"] if "alert" in r)


@needs_promtool
def test_no_metrics_alert_per_project(tmp_path):
    """--project names: one project going silent fires with its label while another keeps pushing."""
    assert generate.main(["--out-dir", str(tmp_path), "--project", "shop", "--project", "bank"]) == 0
    (rule,) = [r for r in generate.rules(projects=("shop", "bank"))["groups"][0]["rules"]
               if r["alert"] == "NluCiNoMetrics"]
    assert 'project="shop"' in rule["expr"] and 'project="bank"' in rule["expr"]
    annotations = rule["annotations"]
    (tmp_path / "t.yml").write_text(yaml.safe_dump({
        "evaluation_interval": "10m", "rule_files": ["alerts.rules.yml"],
        "tests": [{"interval": "10m",
                   "input_series": [{"series": 'nlu_ci_last_run_timestamp_seconds{job="nlu_ci", project="bank"}',
                                     "values": "0x300"}],
                   "alert_rule_test": [
                       {"eval_time": "20h", "alertname": "NluCiNoMetrics", "exp_alerts": []},
                       {"eval_time": "48h", "alertname": "NluCiNoMetrics",
                        "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "nlu_ci", "project": "shop"},
                                        "exp_annotations": dict(annotations,
                                                                summary="nlu-ci: no metrics for 26 h (project shop)")}]},
                   ]}]}))
    out = subprocess.run([PROMTOOL_BIN, "test", "rules", "t.yml"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
