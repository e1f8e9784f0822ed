"""The output channels, in the order a finished run publishes to them.

Adding a channel: one module and one line in ``CHANNELS``. The module declares
``OPTIONS`` (its ``Option``s: ``settings`` gathers them, ``run`` and ``check`` take them as flags),
``PULL_REQUEST`` (whether it runs in ``nlu-ci check``; ``build`` leaves it out there, and ``check`` takes
none of its flags) and ``from_settings(settings, **services) -> Channel | None`` (None: not configured).
Order matters: metrics first (``--strict-metrics`` may turn the outcome into a failure), then the
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
    prometheus,        # metrics.prom + Pushgateway
    review_page,       # reports/<stamp>.html (before Slack: the message links it)
    slack,             # SLACK_WEBHOOK_URL
    kubernetes_event,  # an Event on the Job, in a cluster
]


def build(settings, *, pull_request: bool = False, **services: Any) -> list[Channel]:
    """The configured channels (``services``: e.g. ``kube_session``); in a pull-request check only those whose
    module says ``PULL_REQUEST = True``."""
    chosen = [m for m in CHANNELS if m.PULL_REQUEST or not pull_request]
    return [c for c in (m.from_settings(settings, **services) for m in chosen) if c is not None]


def option_names(*, pull_request: bool = False) -> list[str]:
    """The channels' options (as flags of ``run``; of ``check`` only those of channels that run there)."""
    return [o.name for m in CHANNELS if m.PULL_REQUEST or not pull_request for o in m.OPTIONS]


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
