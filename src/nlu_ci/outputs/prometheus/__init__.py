"""The Prometheus channel: the run's gauges (``gauges``) in ``metrics.prom`` in the store (always) and pushed
to the Pushgateway when one is set (``push``), the carried timestamps read back (``carried``).

Metrics never carry a secret: labels are only project (grouping key), model, outcome, stage and check.
"""
from __future__ import annotations

from typing import Any

from nlu_ci.errors import ConfigError
from nlu_ci.option import Option
from nlu_ci.outputs import RunRecord
from nlu_ci.outputs.prometheus.carried import MAX_CLOCK_SKEW, history_timestamps, read_history, read_previous
from nlu_ci.outputs.prometheus.gauges import (
    LAST_PROMOTION,
    LAST_SUCCESS,
    METRICS,
    OUTCOMES,
    build_registry,
    carried_timestamps,
    run_timestamp,
)
from nlu_ci.outputs.prometheus.push import JOB, TEXTFILE_NAME, PublishResult, publish, push, safe_url
from nlu_ci.report.model import RunReport

__all__ = ["JOB", "LAST_PROMOTION", "LAST_SUCCESS", "MAX_CLOCK_SKEW", "METRICS", "OUTCOMES", "TEXTFILE_NAME",
           "MetricsChannel", "PublishResult", "build_registry", "carried_timestamps", "from_settings",
           "history_timestamps", "publish", "push", "read_history", "read_previous", "run_timestamp", "safe_url"]

OPTIONS = [
    Option("pushgateway_url", "PUSHGATEWAY_URL", None, "Prometheus Pushgateway URL (unset: metrics file only)"),
    Option("pushgateway_username", "PUSHGATEWAY_USERNAME", None, "Pushgateway basic-auth user"),
    Option("pushgateway_password", "PUSHGATEWAY_PASSWORD", None, "Pushgateway basic-auth password", "secret",
           secret_file_env="PUSHGATEWAY_PASSWORD_FILE"),
    Option("metrics_timeout", "NLU_CI_METRICS_TIMEOUT", 5.0, "Pushgateway timeout, seconds", "float"),
    Option("strict_metrics", "NLU_CI_STRICT_METRICS", False, "fail the run when metrics cannot be pushed", "bool"),
]
# `nlu-ci check` writes and pushes no metrics: the store's metrics.prom and the Pushgateway's series are the
# nightly job's (an alert on them must not see a pull request's dry run)
PULL_REQUEST = False


def validate(settings) -> None:
    if settings.metrics_timeout <= 0:
        raise ConfigError("--metrics-timeout: must be > 0")


class MetricsChannel:
    key = "metrics"

    def __init__(self, url: str | None, username: str | None, password: str | None, timeout: float, strict: bool):
        self.url, self.username, self.password = url, username, password
        self.timeout, self.strict = timeout, strict

    def publish(self, report: RunReport, record: RunRecord) -> dict[str, Any]:
        result = publish(report, store_dir=record.store_dir, pushgateway_url=self.url, username=self.username,
                         password=self.password, timeout=self.timeout, history=record.history)
        section = report.sections[self.key] = {
            "pushed": result.pushed, "textfile": str(result.textfile) if result.textfile else None,
            "error": result.push_error or result.textfile_error}
        result.check(self.strict)  # --strict-metrics: a RuntimeFailure, after the section is recorded
        return section


def from_settings(settings, **_services: Any) -> MetricsChannel:
    return MetricsChannel(settings.pushgateway_url, settings.pushgateway_username, settings.pushgateway_password,
                          settings.metrics_timeout, settings.strict_metrics)
