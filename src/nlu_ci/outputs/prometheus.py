"""Metrics channel: ``metrics.prom`` in the store (always) and a push to the Pushgateway (when set)."""
from __future__ import annotations

from typing import Any

from nlu_ci import metrics
from nlu_ci.errors import NluCiError
from nlu_ci.outputs import RunRecord


class MetricsChannel:
    key = "metrics"

    def __init__(self, url: str | None, username: str | None, password: str | None, timeout: float, strict: bool):
        self.url, self.username, self.password = url, username, password
        self.timeout, self.strict = timeout, strict

    def publish(self, report: dict[str, Any], record: RunRecord) -> dict[str, Any]:
        result = metrics.publish(report, store_dir=record.store_dir, pushgateway_url=self.url,
                                 username=self.username, password=self.password, timeout=self.timeout,
                                 strict=False, history=record.history)
        report[self.key] = {"pushed": result.pushed, "textfile": str(result.textfile) if result.textfile else None,
                            "error": result.push_error or result.textfile_error}
        if self.strict and not result.ok:
            raise NluCiError(result.push_error or result.textfile_error or "metrics not published")
        return report[self.key]


def from_settings(settings, **_services: Any) -> MetricsChannel:
    return MetricsChannel(settings.pushgateway_url, settings.pushgateway_username, settings.pushgateway_password,
                          settings.metrics_timeout, settings.strict_metrics)
