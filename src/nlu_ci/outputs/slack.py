"""Slack channel: a message on promoted, rejected and failed runs (``nlu_ci.notify``). Never raises."""
from __future__ import annotations

from typing import Any

from nlu_ci import notify
from nlu_ci.outputs import RunRecord


class SlackChannel:
    key = "notification"

    def __init__(self, webhook_url: str, timeout: float):
        self.webhook_url, self.timeout = webhook_url, timeout

    def publish(self, report: dict[str, Any], record: RunRecord) -> dict[str, Any]:
        result = notify.notify(report, self.webhook_url, timeout=self.timeout)
        return {"sent": result.sent, "error": result.error}


def from_settings(settings, **_services: Any) -> SlackChannel | None:
    if not settings.slack_webhook_url:
        return None
    return SlackChannel(settings.slack_webhook_url, settings.http_timeout)
