"""Review page channel: writes the run's HTML review page beside its report (``reports/<stamp>.html``) and
fills ``report.sections["review_page"]`` = ``{"path", "url"}`` (url: ``NLU_CI_REVIEW_URL_BASE`` + ``/reports/<stamp>.html``
when the store is served somewhere). Runs before Slack, so the message can link the page. Never raises.
"""
from __future__ import annotations

import logging
from typing import Any

from nlu_ci.option import Option
from nlu_ci.outputs import RunRecord
from nlu_ci.redact import redact
from nlu_ci.report.model import RunReport

log = logging.getLogger(__name__)

OPTIONS = [
    Option("review_url_base", "NLU_CI_REVIEW_URL_BASE", None,
           "URL where the project's store folder is served: the review page is BASE/reports/<run>.html "
           "(linked from Slack and the check summary); unset: its path in the store"),
]
PULL_REQUEST = True  # the check summary links the page


def page_url(base: str | None, stamp: str) -> str | None:
    return f"{base.rstrip('/')}/reports/{stamp}.html" if base else None


class ReviewPageChannel:
    key = "review_page"

    def __init__(self, url_base: str | None):
        self.url_base = url_base

    def publish(self, report: RunReport, record: RunRecord) -> dict[str, Any] | None:
        if report.candidate is None:
            return None  # nothing was trained and evaluated: nothing to review
        from nlu_ci.review import page

        path = page.page_path(record.reports_dir, record.stamp)
        try:
            record.save(path, page.html(report))
        except Exception as err:  # noqa: BLE001 - a page that cannot be made never fails the run
            log.warning("review page not written: %s", redact(err))
            return {"path": None, "url": None, "error": redact(" ".join(str(err).split()))}
        log.info("review page: %s", path)
        return {"path": str(path), "url": page_url(self.url_base, record.stamp)}


def from_settings(settings, **_services: Any) -> ReviewPageChannel:
    return ReviewPageChannel(settings.review_url_base)
