"""Slack incoming-webhook notification of a run: promoted, rejected or failed, with the numbers.

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
from nlu_ci.metrics import mcnemar_p_value
from nlu_ci.redact import redact, register

log = logging.getLogger(__name__)

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


def _f(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.{digits}f}"


def _section(report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = report.get(key)
    return value if isinstance(value, Mapping) else {}


def failed_checks(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The enabled gate checks that failed (disabled checks never block, so they are not news)."""
    return [c for c in _section(report, "decision").get("checks") or []
            if isinstance(c, Mapping) and c.get("enabled", True) and not c.get("passed")]


def headline(report: Mapping[str, Any]) -> str:
    outcome = str(report.get("outcome") or "unknown")
    project = report.get("project") or "default"
    candidate = _section(report, "candidate").get("model")
    text = f"{ICONS.get(outcome, ':grey_question:')} nlu-ci [{project}]: {outcome.upper()}"
    if outcome in ("promoted", "rejected") and candidate:
        text += f" candidate {candidate}"
    return text


def message_lines(report: Mapping[str, Any]) -> list[str]:
    """The message body, one fact a line (plain text; ``build_message`` escapes it for Slack)."""
    lines: list[str] = []
    candidate, active = _section(report, "candidate"), _section(report, "active")
    if candidate or active:
        def pair(key: str) -> str:
            if not active:
                return f"candidate {_f(candidate.get(key))} (no active model)"
            text = f"candidate {_f(candidate.get(key))} vs active {_f(active.get(key))}"
            c, a = candidate.get(key), active.get(key)
            if key == "intent_f1" and isinstance(c, (int, float)) and isinstance(a, (int, float)):
                text += f" ({c - a:+.4f})"
            return text

        lines.append(f"intent F1: {pair('intent_f1')}")
        lines.append(f"intent accuracy: {pair('intent_accuracy')}")
        if candidate.get("entity_f1") is not None or active.get("entity_f1") is not None:
            lines.append(f"entity F1: {pair('entity_f1')}")
        if active.get("model"):
            lines.append(f"active model: {active.get('model')}")
    p = mcnemar_p_value(report)
    if p is not None:
        lines.append(f"McNemar p-value: {p:.4g}")
    data = _section(report, "data")
    if data:
        lines.append(f"data: {data.get('train_examples', '–')} training / {data.get('test_examples', '–')} test "
                     f"examples, {len(data.get('intents') or [])} intents")
    decision = _section(report, "decision")
    if decision.get("reason"):
        lines.append(f"decision: {decision.get('reason')}")
    for check in failed_checks(report):
        lines.append(f"FAILED check {check.get('name')}: {check.get('detail') or ''}".rstrip(": "))
    if report.get("error"):
        lines.append(f"error: {report.get('error')}")
    total = _section(report, "durations").get("total")
    if isinstance(total, (int, float)):
        lines.append(f"duration: {total:.1f} s")
    page = _section(report, "review_page")
    if page.get("url") or page.get("path"):
        lines.append(f"review page: {page.get('url') or page.get('path')}")
    return lines


BLOCK_TEXT_LIMIT = 3000  # Slack refuses a section whose text is longer (400 invalid_blocks): the whole message is lost


def _fit(text: str, limit: int = BLOCK_TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(report: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack payload: ``text`` (fallback, notifications) and ``blocks`` (the formatted message)."""
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
    started = report.get("started_at")
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


def notify(report: Mapping[str, Any], webhook_url: str | None, *, timeout: float = 5.0, attempts: int = 2,
           outcomes: tuple[str, ...] = NOTIFY_OUTCOMES, session: requests.Session | None = None) -> NotifyResult:
    """Post the run's message to the Slack incoming webhook. Never raises.

    Connection errors, timeouts, 429 and 5xx are retried (``attempts`` in all, waiting Retry-After up to
    5 s); other answers (400 invalid_payload, 403 invalid_token, 404 no_service, 410 channel_is_archived)
    are final.
    """
    result = NotifyResult()
    try:
        outcome = report.get("outcome")
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
