"""The metrics' two destinations: ``<store>/metrics.prom`` (always, atomic) and the Pushgateway (HTTP PUT, job
``nlu_ci``, grouping key ``{"project": <project>}``, so the group holds exactly this run's series).

A push that fails is a warning (URL redacted) unless ``strict``: ``PublishResult.check`` then raises
``RuntimeFailure``. A ``locked`` run pushes nothing (it did no work; the run holding the lock pushes its own
outcome).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, push_to_gateway, write_to_textfile
from prometheus_client.exposition import basic_auth_handler, default_handler

from nlu_ci import deadline
from nlu_ci.errors import RuntimeFailure
from nlu_ci.outputs.prometheus.carried import history_timestamps, merge_previous, read_history, read_previous
from nlu_ci.outputs.prometheus.gauges import build_registry
from nlu_ci.redact import redact, register
from nlu_ci.report.model import RunReport

log = logging.getLogger("nlu_ci.outputs.prometheus")

JOB = "nlu_ci"
TEXTFILE_NAME = "metrics.prom"
HISTORY_NAME = "history.jsonl"


@dataclass
class PublishResult:
    """What ``publish`` did. ``push_error``/``textfile_error`` are one-line, redacted messages."""

    textfile: Path | None = None          # the metrics.prom written, None if writing failed
    textfile_error: str | None = None
    push_attempted: bool = False          # False when no Pushgateway URL was configured
    pushed: bool = False
    push_error: str | None = None
    url: str | None = None                # the Pushgateway URL with credentials removed and redacted

    @property
    def ok(self) -> bool:
        return self.textfile_error is None and (self.pushed or not self.push_attempted)


    def check(self, strict: bool) -> None:
        """Under ``--strict-metrics`` a failed push or textfile write is a ``RuntimeFailure`` (exit 1)."""
        if strict and not self.ok:
            raise RuntimeFailure(self.push_error or self.textfile_error or "metrics not published")


def safe_url(url: str) -> str:
    """The URL as it may appear in a log line: no user:password, registered secrets masked."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            url = urlunsplit((parts.scheme, host, parts.path, "", ""))
        else:
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    except ValueError:
        url = "<invalid URL>"
    return redact(url)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return redact(f"{type(err).__name__}: {text}")


def push(registry: CollectorRegistry, project: str, url: str, *, username: str | None = None,
         password: str | None = None, timeout: float = 5.0) -> None:
    """PUT the registry to the Pushgateway group ``job=nlu_ci, project=<project>``; raises on failure.

    Credentials embedded in the URL (``https://user:pass@host``) are used for basic auth as well."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.password is not None:
        register(parts.password)
        username = username if username is not None else parts.username
        password = password if password is not None else parts.password
        host = parts.hostname or ""
        url = urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))
    if password:
        register(password)
        handler = partial(basic_auth_handler, username=username or "", password=password)
    else:
        handler = default_handler
    push_to_gateway(url, job=JOB, registry=registry, grouping_key={"project": project},
                    timeout=timeout, handler=handler)


def publish(report: RunReport | Mapping[str, Any], *, store_dir: Path, pushgateway_url: str | None,
            username: str | None = None, password: str | None = None, timeout: float = 5.0,
            strict: bool = False, previous: Mapping[str, Any] | None = None,
            history: list[Any] | None = None) -> PublishResult:
    """Write ``<store_dir>/metrics.prom`` (always; atomic) and push to the Pushgateway if a URL is given.

    The carried timestamps come from ``previous``, the existing ``metrics.prom`` and the store's history
    (``history`` entries when given, else ``history.jsonl`` read here; newest wins).
    Failures are logged as one-line warnings and reported in the result; with ``strict=True`` a failed
    push or textfile write raises ``RuntimeFailure`` (after the other one was still attempted).
    """
    report = RunReport.coerce(report)
    store_dir = Path(store_dir)
    textfile = store_dir / TEXTFILE_NAME
    project = str(report.project or "default")
    carried = history_timestamps(history) if history is not None else read_history(store_dir / HISTORY_NAME)
    registry = build_registry(report, merge_previous(previous, read_previous(textfile), carried))
    result = PublishResult()

    try:
        store_dir.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(textfile), registry)
        result.textfile = textfile
    except OSError as err:
        result.textfile_error = f"cannot write metrics file {textfile}: {_one_line(err)}"
        log.warning("%s", result.textfile_error)

    if pushgateway_url and report.outcome == "locked":
        # another run holds the store and will push its own outcome: a PUT now would replace that
        # project's group (wipe its F1 series, clear a failed run's alert) with a run that did nothing
        log.info("locked run: nothing pushed to the Pushgateway (the run holding the lock pushes)")
    elif pushgateway_url:
        result.push_attempted = True
        result.url = safe_url(pushgateway_url)
        try:
            deadline.run(lambda: push(registry, project, pushgateway_url, username=username, password=password,
                                      timeout=timeout), 2 * timeout, what="push")  # a trickled answer: total deadline
            result.pushed = True
            log.info("metrics pushed to %s (job=%s, project=%s)", result.url, JOB, project)
        except Exception as err:  # urllib raises URLError/HTTPError/OSError/ValueError/timeout
            result.push_error = f"cannot push metrics to Pushgateway {result.url}: {_one_line(err)}"
            log.warning("%s", result.push_error)

    result.check(strict)
    return result
