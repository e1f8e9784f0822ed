"""`nlu-ci run` for real (real rasa_nlu training, the CLI in a subprocess) with PUSHGATEWAY_URL set: promote,
then reject, then fail. A real Prometheus scrapes the real Pushgateway; every dashboard panel query must then
return the series and values of each run's report, and Slack (a loopback receiver) gets one message a run."""
from __future__ import annotations

import time
from datetime import datetime

from dashboard_check import check_dashboard, load_dashboard, targets, ts
from prometheus_client.parser import text_string_to_metric_families

from support.data import SAMPLE, shuffled_train_labels, write_data
from support.http import refusing_port

PROJECT = "shop"


def wait_scraped(prom, report: dict) -> float:
    """Wait until Prometheus has scraped this run's push; returns a moment at which it is the newest sample."""
    want = ts(report["finished_at"])
    prom.wait_for(f'nlu_ci_last_run_timestamp_seconds{{job="nlu_ci", project="{PROJECT}"}}',
                  lambda r: len(r) == 1 and abs(float(r[0]["value"][1]) - want) < 1e-3)
    return time.time()


def test_promote_reject_fail_through_the_cli(cli, tmp_path, sample_examples, prometheus_stack, slack, any_pipeline):
    gateway, prom = prometheus_stack
    env = {"PUSHGATEWAY_URL": gateway.url, "NLU_CI_PROJECT": PROJECT, "SLACK_WEBHOOK_URL": slack.url}
    bad_labels = write_data(tmp_path / "shuffled.json", shuffled_train_labels(sample_examples, 0.6))
    broken = tmp_path / "broken.json"
    broken.write_text('{"rasa_nlu_data": {"common_examples": [')

    reports, times = [], []
    for data, outcome, code in ((SAMPLE, "promoted", 0), (bad_labels, "rejected", 0), (broken, "failed", 2)):
        result = cli(["run", "--data", str(data), "--json"], **env)
        assert result.code == code, result.output
        report = result.json
        assert report["outcome"] == outcome, result.output
        assert report["metrics"]["pushed"] is True, report["metrics"]
        reports.append(report)
        times.append(wait_scraped(prom, report))

    # the runs are what the test meant them to be
    promoted, rejected, failed = reports
    assert rejected["candidate"]["intent_f1"] < rejected["active"]["intent_f1"]
    assert failed["candidate"] is None and "broken.json" in failed["error"]

    dashboard = load_dashboard()
    checked = check_dashboard(prom, dashboard, reports, times, PROJECT)
    assert checked == 3 * len(list(targets(dashboard)))

    # the textfile in the store holds the last run, and the promotion time carried through the failed run
    stored = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(
        (cli.models / PROJECT / "metrics.prom").read_text()) for s in family.samples}
    assert stored[("nlu_ci_run_outcome", (("outcome", "failed"),))] == 1
    assert stored[("nlu_ci_last_promotion_timestamp_seconds", ())] == ts(promoted["finished_at"])
    assert stored[("nlu_ci_last_success_timestamp_seconds", ())] == ts(rejected["finished_at"])

    # Slack: one message per run, with the numbers, the failed checks and the error
    texts = [r.json["text"] for r in slack.received]
    assert len(texts) == 3, texts
    assert texts[0].startswith(":white_check_mark: nlu-ci [shop]: PROMOTED")
    assert f"intent F1: candidate {promoted['candidate']['intent_f1']:.4f}" in texts[0]
    assert texts[1].startswith(":warning: nlu-ci [shop]: REJECTED")
    assert (f"intent F1: candidate {rejected['candidate']['intent_f1']:.4f} "
            f"vs active {rejected['active']['intent_f1']:.4f}") in texts[1]
    for check in rejected["decision"]["checks"]:
        if check.get("enabled", True) and not check["passed"]:
            assert f"FAILED check {check['name']}" in texts[1]
    assert texts[2].startswith(":x: nlu-ci [shop]: FAILED") and "broken.json" in texts[2]
    for report in reports:  # the webhook URL (a secret) is in no report
        assert "xoxsecretwebhook42" not in str(report)


def test_pushgateway_down_warns_and_strict_metrics_fails(cli):
    with refusing_port() as port:  # bound, not listening: nothing answers there
        url = f"http://127.0.0.1:{port}"
        result = cli(["run", "--data", str(SAMPLE), "--json"], PUSHGATEWAY_URL=url, NLU_CI_METRICS_TIMEOUT="2")
        assert result.code == 0, result.output
        assert result.json["outcome"] == "promoted"
        assert f"cannot push metrics to Pushgateway {url}" in result.stderr
        assert result.json["metrics"]["pushed"] is False
        assert (cli.store / "metrics.prom").exists()

        t0 = time.monotonic()
        # same data again: a cheap completed run (skipped) whose push fails, and --strict-metrics fails it
        strict = cli(["run", "--data", str(SAMPLE), "--json", "--strict-metrics"],
                     PUSHGATEWAY_URL=url, NLU_CI_METRICS_TIMEOUT="2")
        assert strict.code == 1, strict.output
        assert strict.json["outcome"] == "failed"
        assert "cannot push metrics to Pushgateway" in strict.json["error"]
        assert time.monotonic() - t0 < 120
        assert datetime.fromisoformat(strict.json["finished_at"].replace("Z", "+00:00"))
