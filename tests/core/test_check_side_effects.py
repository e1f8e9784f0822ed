"""`nlu-ci check` runs only the channels that declare they run in pull-request mode (``PULL_REQUEST`` in each
channel module, filtered by ``outputs/channels.build``): a configured Slack webhook and the metrics stay silent,
where the same failure in `run` posts and writes them. Real CLI processes, a real loopback Slack stand-in; a
check that fails before training, so no model is trained (fast)."""
from __future__ import annotations

import json


def test_a_failing_check_posts_nothing_to_slack_and_writes_no_metrics(cli, slack, tmp_path):
    missing = str(tmp_path / "no-such-data.json")
    # control: the nightly job with the same failure posts to Slack and writes metrics.prom
    r = cli(["run", "--data", missing], SLACK_WEBHOOK_URL=slack.url)
    assert r.code == 2, r.output
    assert len(slack.received) == 1 and "FAILED" in slack.received[0].json["text"]
    assert (cli.store / "metrics.prom").is_file()
    (cli.store / "metrics.prom").unlink()
    # the pull-request check: same webhook, same failure, nothing posted, no metrics, the failure still reported
    r = cli(["check", "--data", missing, "--json"], SLACK_WEBHOOK_URL=slack.url)
    assert r.code == 2, r.output
    report = r.json
    assert report["outcome"] == "failed" and "no-such-data.json" in report["error"]
    assert len(slack.received) == 1, [x.json for x in slack.received[1:]]
    assert "slack" not in report and "metrics" not in report
    assert not (cli.store / "metrics.prom").exists()
    last = json.loads((cli.store / "last_report.json").read_text())
    assert last["outcome"] == "failed"  # the check is still recorded in the store's history and last report
