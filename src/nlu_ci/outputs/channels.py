"""The output channels, in the order a finished run publishes to them.

Adding a channel: one module with ``from_settings(settings, **services) -> Channel | None`` and one line
here. Order matters: metrics first (``--strict-metrics`` may turn the outcome into a failure), then the
channels that tell people the final outcome.
"""
from __future__ import annotations

import logging
from typing import Any

from nlu_ci.errors import EXIT_RUNTIME, NluCiError
from nlu_ci.outputs import Channel, RunRecord, kubernetes_event, prometheus, review_page, slack
from nlu_ci.redact import redact
from nlu_ci.report.model import RunReport

log = logging.getLogger(__name__)

CHANNELS = [
    prometheus.from_settings,        # metrics.prom + Pushgateway
    review_page.from_settings,       # reports/<stamp>.html (before Slack: the message links it)
    slack.from_settings,             # SLACK_WEBHOOK_URL
    kubernetes_event.from_settings,  # an Event on the Job, in a cluster
]


def build(settings, **services: Any) -> list[Channel]:
    """The configured channels (``services``: e.g. ``kube_session``)."""
    return [c for c in (factory(settings, **services) for factory in CHANNELS) if c is not None]


def publish_all(channels: list[Channel], report: RunReport, record: RunRecord) -> None:
    """Every channel in turn; each fills ``report.sections[channel.key]``. A failing channel never hides the
    outcome."""
    for channel in channels:
        try:
            section = channel.publish(report, record)
            if section is not None:
                report.sections[channel.key] = section
        except NluCiError as err:  # --strict-metrics: the run fails (exit 1) ...
            # ... but a promotion that happened is never reported undone
            report.end("promoted" if report.outcome == "promoted" else "failed", EXIT_RUNTIME, redact(str(err)))
            log.error("%s", redact(err))
        except Exception as err:  # noqa: BLE001 - publishing must never crash the job
            log.warning("output %s failed: %s", channel.key, redact(err))
