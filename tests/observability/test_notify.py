"""nlu_ci.outputs.slack (the Slack channel): the Slack message, checked through a real HTTP receiver on loopback."""
from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import pytest
from reports import make_report

from nlu_ci.outputs import slack as notify
from nlu_ci.redact import RedactingFilter


def test_promotion_message_has_the_numbers(slack):
    report = make_report("promoted", candidate=0.9123, active=0.8456, p_value=0.0213, train=412, test=103)
    result = notify.notify(report, slack.url, timeout=5)
    assert result.sent and result.error is None and result.attempts == 1
    [request] = slack.received
    assert request.path == urlsplit(slack.url).path
    assert request.headers["Content-Type"] == "application/json"
    payload = request.json
    text = payload["text"]
    assert text.startswith(":white_check_mark: nlu-ci [p]: PROMOTED candidate model_20261120-020000")
    assert "intent F1: candidate 0.9123 vs active 0.8456 (+0.0667)" in text
    assert "McNemar p-value: 0.0213" in text
    assert "data: 412 training / 103 test examples, 3 intents" in text
    fb = report.fallback  # the fallback section's numbers, as the assistant would act, and where it should
    c, a = fb.model("candidate"), fb.model("active")
    assert (f"fallback threshold 0.3: answers candidate {100 * c['coverage']:.1f}% ({c['out_of_scope_answered']} "
            f"out-of-scope) vs active {100 * a['coverage']:.1f}% ({a['out_of_scope_answered']} out-of-scope)") in text
    assert (f"threshold for precision 0.9: candidate {c['recommended']['threshold']:.3f} "
            f"(answers {100 * c['recommended']['coverage']:.1f}%) vs active {a['recommended']['threshold']:.3f}") in text
    assert "FAILED" not in text
    blocks = payload["blocks"]
    assert blocks[0]["text"]["text"].startswith("*:white_check_mark: nlu-ci [p]: PROMOTED")
    assert all(b["type"] in ("section", "context") for b in blocks)


def test_first_promotion_without_an_active_model(slack):
    assert notify.notify(make_report("promoted", candidate=0.8, active=None, p_value=None), slack.url).sent
    text = slack.received[0].json["text"]
    assert "intent F1: candidate 0.8000 (no active model)" in text
    assert "vs active" not in text and "p-value" not in text


def test_rejection_lists_the_failed_checks(slack):
    report = make_report("rejected", candidate=0.70, active=0.88, failed_check="per_intent_max_drop")
    assert notify.notify(report, slack.url).sent
    payload = slack.received[0].json
    assert ":warning: nlu-ci [p]: REJECTED" in payload["text"]
    assert "intent F1: candidate 0.7000 vs active 0.8800 (-0.1800)" in payload["text"]
    checks = [b for b in payload["blocks"] if b.get("text", {}).get("text", "").startswith("*Failed checks*")]
    assert checks and "• per_intent_max_drop: per_intent_max_drop failed: 0.61 &lt; 0.80" in checks[0]["text"]["text"]
    # passed and disabled checks are not listed
    assert "min_intent_f1" not in checks[0]["text"]["text"] and "bootstrap_ci" not in checks[0]["text"]["text"]


def test_failure_message_has_the_error(slack):
    report = make_report("failed", candidate=None, active=None, error="DataError: data/nlu.json: line 3: bad JSON")
    assert notify.notify(report, slack.url).sent
    text = slack.received[0].json["text"]
    assert text.startswith(":x: nlu-ci [p]: FAILED")
    assert "error: DataError: data/nlu.json: line 3: bad JSON" in text


@pytest.mark.parametrize("outcome", ["skipped", "locked", "dry_run"])
def test_quiet_outcomes_send_nothing(slack, outcome):
    result = notify.notify(make_report(outcome), slack.url)
    assert not result.sent and result.skipped == f"outcome {outcome} is not notified"
    assert slack.received == []


def test_no_webhook_sends_nothing():
    result = notify.notify(make_report("failed"), None)
    assert not result.sent and result.error is None and result.skipped


def test_slack_error_answer_is_a_warning_without_the_url(slack, caplog):
    slack.responses.append((404, "no_service", 0, {}))
    with caplog.at_level(logging.DEBUG):
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())
        result = notify.notify(make_report("rejected"), slack.url)
    assert not result.sent and result.attempts == 1  # 404 is final, not retried
    assert result.error == "Slack webhook answered HTTP 404: no_service"
    assert "Slack notification not sent: Slack webhook answered HTTP 404: no_service" in caplog.text
    secret_path = urlsplit(slack.url).path
    for record in caplog.records:
        assert secret_path not in record.getMessage() and "xoxsecretwebhook42" not in record.getMessage()


def test_retries_rate_limit_then_sends(slack):
    slack.responses.append((429, "rate_limited", 0, {"Retry-After": "0"}))
    result = notify.notify(make_report("promoted"), slack.url, attempts=2)
    assert result.sent and result.attempts == 2 and len(slack.received) == 2


def test_timeout_never_raises_and_is_bounded(slack):
    slack.responses.append((200, "ok", 3.0, {}))
    t0 = time.monotonic()
    result = notify.notify(make_report("promoted"), slack.url, timeout=0.5, attempts=1)
    assert time.monotonic() - t0 < 2.5
    assert not result.sent and result.error == "Slack webhook timed out after 0.5 s"


def test_unreachable_webhook_never_raises_and_hides_the_url(caplog):
    url = "http://127.0.0.1:9/services/T0/B0/xoxsecretwebhook42"  # discard port: nothing listens
    with caplog.at_level(logging.WARNING):
        result = notify.notify(make_report("failed"), url, timeout=1, attempts=1)
    assert not result.sent and result.error == "Slack webhook unreachable (ConnectionError)"
    assert "xoxsecretwebhook42" not in caplog.text


def test_invalid_url_and_broken_report_never_raise():
    assert notify.notify(make_report("failed"), "hooks.slack.com/no-scheme").error.startswith("Slack webhook URL")
    weird = {"outcome": "rejected", "candidate": "not a dict", "decision": {"checks": [None, 3]},
             "durations": {"total": "x"}}
    message = notify.build_message(weird)
    assert message["text"].startswith(":warning: nlu-ci [default]: REJECTED")


def test_slack_markup_in_report_is_escaped(slack):
    report = make_report("failed", candidate=None, error="<!channel> & <http://evil|click>")
    assert notify.notify(report, slack.url).sent
    text = slack.received[0].json["text"]
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in text and "<!channel>" not in text


def test_the_message_links_the_review_page(slack):
    report = make_report("rejected", candidate=0.70, active=0.88, failed_check="per_intent_max_drop")
    report["review_page"] = {"path": "/store/p/reports/20261120T020000-000000.html",
                             "url": "https://nlu.example.test/p/reports/20261120T020000-000000.html"}
    assert notify.notify(report, slack.url).sent
    assert "review page: https://nlu.example.test/p/reports/20261120T020000-000000.html" in slack.received[0].json["text"]
    report["review_page"]["url"] = None
    assert "review page: /store/p/reports/20261120T020000-000000.html" in "\n".join(notify.message_lines(report))


# ---------------------------------------------------------------- what Slack itself refuses

def test_the_stand_in_refuses_what_slack_refuses(slack):
    """The receiver answers like Slack: no ``text`` -> 400 no_text; a block text over 3,000 characters ->
    400 invalid_blocks (so a message the real Slack would drop cannot pass here)."""
    import requests

    no_text = requests.post(slack.url, json={"blocks": [{"type": "section", "text": {"type": "mrkdwn",
                                                                                     "text": "hi"}}]}, timeout=5)
    assert (no_text.status_code, no_text.text) == (400, "no_text")
    long_block = {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]}
    too_long = requests.post(slack.url, json=long_block, timeout=5)
    assert (too_long.status_code, too_long.text) == (400, "invalid_blocks")
    fits = requests.post(slack.url, json=dict(long_block, blocks=[{"type": "section", "text": {
        "type": "mrkdwn", "text": "x" * 3000}}]), timeout=5)
    assert (fits.status_code, fits.text) == (200, "ok")


def test_a_very_long_error_still_reaches_slack(slack):
    report = make_report("failed", error="cannot read data: " + "x" * 5000)
    result = notify.notify(report, slack.url, timeout=5)
    assert result.sent, result.error
    assert slack.received[0].json["text"].startswith(":x: nlu-ci [p]: FAILED")
