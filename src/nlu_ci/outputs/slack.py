"""The Slack channel: an incoming-webhook message on promoted, rejected and failed runs, with the numbers.

``notify(report, webhook_url)`` posts one message built from the run report (docs/architecture.md,
"Run report") and never raises: a notification that cannot be delivered is a one-line warning and a
``NotifyResult`` with ``error`` set. Runs with other outcomes (skipped, locked, dry_run) send nothing.

The webhook URL is a secret (it is the credential): it is registered with ``nlu_ci.redact`` (whole URL and
its path, which urllib3 logs at DEBUG) and no message of this module contains it or an exception text that
could quote it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from nlu_ci import deadline
from nlu_ci.option import Option
from nlu_ci.outputs import RunRecord
from nlu_ci.redact import redact, register
from nlu_ci.report.model import RunReport
from nlu_ci.report.views import delta, failed_checks, fmt, mcnemar_p_value, review_link

log = logging.getLogger(__name__)

OPTIONS = [
    Option("slack_webhook_url", "SLACK_WEBHOOK_URL", None, "Slack incoming webhook (prefer SLACK_WEBHOOK_URL_FILE)",
           "secret", secret_file_env="SLACK_WEBHOOK_URL_FILE"),
]
PULL_REQUEST = False  # `nlu-ci check` posts nothing: the channel is for the nightly job's outcomes

NOTIFY_OUTCOMES = ("promoted", "rejected", "failed")
ICONS = {"promoted": ":white_check_mark:", "rejected": ":warning:", "failed": ":x:"}
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_WAIT = 5.0  # seconds; a longer Retry-After is not worth holding the job for


@dataclass
class NotifyResult:
    sent: bool = False
    skipped: str | None = None   # why nothing was sent (no webhook, outcome not notified)
    error: str | None = None     # one line, never the URL
    attempts: int = 0


def _escape(text: Any) -> str:
    """Slack mrkdwn control characters (&, <, >) escaped; secrets masked."""
    return redact(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def headline(report: RunReport) -> str:
    outcome = str(report.outcome or "unknown")
    candidate = report.candidate.model if report.candidate is not None else None
    text = f"{ICONS.get(outcome, ':grey_question:')} nlu-ci [{report.project or 'default'}]: {outcome.upper()}"
    if outcome in ("promoted", "rejected") and candidate:
        text += f" candidate {candidate}"
    return text


def _pair(report: RunReport, key: str) -> str:
    c = getattr(report.candidate, key) if report.candidate is not None else None
    if report.active is None:
        return f"candidate {fmt(c)} (no active model)"
    a = getattr(report.active, key)
    text = f"candidate {fmt(c)} vs active {fmt(a)}"
    if key == "intent_f1" and delta(c, a) is not None:
        text += f" ({delta(c, a):+.4f})"
    return text


def message_lines(report: RunReport | Mapping[str, Any]) -> list[str]:
    """The message body, one fact a line (plain text; ``build_message`` escapes it for Slack)."""
    report = RunReport.coerce(report)
    lines: list[str] = []
    candidate, active = report.candidate, report.active
    if candidate is not None or active is not None:
        lines.append(f"intent F1: {_pair(report, 'intent_f1')}")
        lines.append(f"intent accuracy: {_pair(report, 'intent_accuracy')}")
        if any(m is not None and m.entity_f1 is not None for m in (candidate, active)):
            lines.append(f"entity F1: {_pair(report, 'entity_f1')}")
        if active is not None and active.model:
            lines.append(f"active model: {active.model}")
    lines.extend(_fallback_lines(report))
    p = mcnemar_p_value(report)
    if p is not None:
        lines.append(f"McNemar p-value: {p:.4g}")
    data = report.data
    if data is not None:
        lines.append(f"data: {_or_dash(data.train_examples)} training / {_or_dash(data.test_examples)} test "
                     f"examples, {len(data.intents)} intents")
    if report.decision is not None and report.decision.reason:
        lines.append(f"decision: {report.decision.reason}")
    for check in failed_checks(report):
        lines.append(f"FAILED check {check.name}: {check.detail or ''}".rstrip(": "))
    if report.error:
        lines.append(f"error: {report.error}")
    total = report.durations.get("total")
    if isinstance(total, (int, float)):
        lines.append(f"duration: {total:.1f} s")
    if review_link(report):
        lines.append(f"review page: {review_link(report)}")
    return lines


def _fallback_lines(report: RunReport) -> list[str]:
    """The ``fallback`` section (gate/fallback.py) in two lines: as the assistant acts at the policy threshold, and
    the threshold that reaches the target precision. Counts and shares only, never a message."""
    fb = report.fallback
    if fb is None or not fb.model("candidate"):
        return []
    parts = [(role, fb.model(role)) for role in ("candidate", "active") if fb.model(role)]

    def share(value: Any) -> str:
        return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "-"

    acting = " vs ".join(f"{role} {share(m.get('coverage'))} ({m.get('out_of_scope_answered')} out-of-scope)"
                         for role, m in parts)
    lines = [f"fallback threshold {fb.threshold}: answers {acting}"]
    recommended = []
    for role, m in parts:
        rec = m.get("recommended") or {}
        recommended.append(f"{role} {rec['threshold']:.3f} (answers {share(rec.get('coverage'))})" if rec.get("reached")
                           else f"{role} not reached")
    lines.append(f"threshold for precision {fb.target_precision}: {' vs '.join(recommended)}")
    return lines


def _or_dash(value: Any) -> Any:
    return "–" if value is None else value


BLOCK_TEXT_LIMIT = 3000  # Slack refuses a section whose text is longer (400 invalid_blocks): the whole message is lost


def _fit(text: str, limit: int = BLOCK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(report: RunReport | Mapping[str, Any]) -> dict[str, Any]:
    """The Slack payload: ``text`` (fallback, notifications) and ``blocks`` (the formatted message)."""
    report = RunReport.coerce(report)
    title = headline(report)
    lines = message_lines(report)
    checks = [line for line in lines if line.startswith("FAILED check ")]
    facts = [line for line in lines if not line.startswith("FAILED check ")]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _fit(f"*{_escape(title)}*")}},
    ]
    if facts:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _fit("\n".join(_escape(line) for line in facts))}})
    if checks:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _fit("*Failed checks*\n" + "\n".join(
            f"• {_escape(line.removeprefix('FAILED check '))}" for line in checks))}})
    started = report.started_at
    if started:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(f"run started {started}")}]})
    return {"text": _fit(_escape("\n".join([title, *lines]))), "blocks": blocks}


def _register_url(url: str) -> None:
    register(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    register(parts.path + (f"?{parts.query}" if parts.query else ""))


def _retry_wait(response: requests.Response | None, attempt: int) -> float:
    if response is not None:
        try:
            return min(float(response.headers.get("Retry-After", "")), MAX_RETRY_WAIT)
        except ValueError:
            pass
    return min(0.5 * 2 ** attempt, MAX_RETRY_WAIT)


def notify(report: RunReport | Mapping[str, Any], webhook_url: str | None, *, timeout: float = 5.0, attempts: int = 2,
           outcomes: tuple[str, ...] = NOTIFY_OUTCOMES, session: requests.Session | None = None) -> NotifyResult:
    """Post the run's message to the Slack incoming webhook. Never raises.

    Connection errors, timeouts, 429 and 5xx are retried (``attempts`` in all, waiting Retry-After up to
    5 s); other answers (400 invalid_payload, 403 invalid_token, 404 no_service, 410 channel_is_archived)
    are final.
    """
    result = NotifyResult()
    try:
        report = RunReport.coerce(report)
        outcome = report.outcome
        if not webhook_url:
            result.skipped = "no Slack webhook configured"
            return result
        _register_url(webhook_url)
        if outcome not in outcomes:
            result.skipped = f"outcome {outcome} is not notified"
            return result
        if not str(webhook_url).startswith(("https://", "http://")):
            result.error = "Slack webhook URL must start with https:// (SLACK_WEBHOOK_URL)"
            log.warning("Slack notification not sent: %s", result.error)
            return result
        payload = build_message(report)
        http = session or requests.Session()
        try:
            for attempt in range(max(1, attempts)):
                result.attempts = attempt + 1
                response = None
                try:  # a total deadline: an answer trickled a byte at a time never trips the read timeout
                    response = deadline.run(lambda: http.post(webhook_url, json=payload, timeout=(timeout, timeout),
                                                              allow_redirects=False), 2 * timeout,
                                            what="Slack webhook", on_expire=http.close)
                except (requests.Timeout, deadline.DeadlineExceeded):
                    result.error = f"Slack webhook timed out after {timeout:g} s"
                except requests.RequestException as err:  # its text can quote the URL: only the type is kept
                    result.error = f"Slack webhook unreachable ({type(err).__name__})"
                else:
                    if 200 <= response.status_code < 300:
                        result.sent, result.error = True, None
                        log.info("Slack notified: %s", outcome)
                        return result
                    body = " ".join(response.text.split())[:120]
                    result.error = redact(f"Slack webhook answered HTTP {response.status_code}: {body}")
                    if response.status_code not in RETRY_STATUS:
                        break
                if attempt + 1 < attempts:
                    time.sleep(_retry_wait(response, attempt))
        finally:
            if session is None:
                http.close()
    except Exception as err:  # noqa: BLE001 - a notification must never fail the run
        result.error = f"Slack notification failed ({type(err).__name__})"
    log.warning("Slack notification not sent: %s", redact(result.error))
    return result


class SlackChannel:
    key = "notification"

    def __init__(self, webhook_url: str, timeout: float):
        self.webhook_url, self.timeout = webhook_url, timeout

    def publish(self, report: RunReport, record: RunRecord) -> dict[str, Any]:
        result = notify(report, self.webhook_url, timeout=self.timeout)
        return {"sent": result.sent, "error": result.error}


def from_settings(settings, **_services: Any) -> SlackChannel | None:
    if not settings.slack_webhook_url:
        return None
    return SlackChannel(settings.slack_webhook_url, settings.http_timeout)
