"""The review page of a run: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched).

``render(report, rows)`` builds it from the run report and its per-utterance predictions with Jinja2
(autoescaping on: utterances and intent names are user data, a ``<script>`` in one is shown as text; the
page's Content-Security-Policy forbids scripts as a second line of defence). ``html`` is the page of a stored
report; the review page channel and ``nlu-ci report`` save it beside the report as ``reports/<stamp>.html``.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nlu_ci.errors import DataError
from nlu_ci.redact import redact
from nlu_ci.report import views
from nlu_ci.report.model import RunReport
from nlu_ci.review import content, svg

log = logging.getLogger(__name__)

TEMPLATE = "page.html.j2"
BINS = 10


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("nlu_ci.review", "."), autoescape=select_autoescape(["j2", "html"],
                      default_for_string=True, default=True), undefined=StrictUndefined, trim_blocks=False)
    env.globals.update(fmt=views.fmt, signed=views.signed)
    return env


def load_predictions(path: str | Path | None) -> list[dict]:
    """The rows of a ``predictions.jsonl`` file ([] when there is none or it cannot be read)."""
    if not path:
        return []
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue
    except OSError as err:
        log.warning("review page: cannot read predictions %s: %s", path, err.strerror or err)
    return rows


def context(report: RunReport | Mapping[str, Any], rows: list[dict]) -> dict[str, Any]:
    """Everything the template shows (the report's typed sections, plain values, the charts as SVG markup)."""
    from markupsafe import Markup

    report = RunReport.coerce(report)
    candidate = report.candidate.to_dict() if report.candidate is not None else {}
    active = report.active.to_dict() if report.active is not None else {}
    deltas = content.intent_deltas(candidate, active) if active else []
    names, counts = content.confusion(rows, "candidate")
    histograms = []
    for side, title in (("candidate", "candidate"), ("active", "active model")):
        if any(r.get(side) for r in rows):
            right, wrong = content.confidence_bins(rows, side, BINS)
            histograms.append({"title": title, "svg": Markup(svg.histogram(
                [("correct", right, svg.GOOD), ("wrong", wrong, svg.BAD)], bins=BINS,
                label=f"{title}: intent confidence of correct and wrong predictions"))})
    right, wrong = content.entity_confidence_bins(rows, "candidate", BINS)
    if sum(right) + sum(wrong):
        histograms.append({"title": "candidate, entities", "svg": Markup(svg.histogram(
            [("right", right, svg.GOOD), ("wrong", wrong, svg.BAD)], bins=BINS,
            label="candidate: entity confidence of right and wrong entities"))})
    errors, kinds = content.entity_errors(rows, "candidate")
    outcome = str(report.outcome or "unknown")
    has_pairs = any(r.get("candidate") and r.get("active") for r in rows)
    predictions = report.sections.get("predictions_file")
    return {
        "project": report.project or "default", "outcome": outcome,
        "badge": {"promoted": "ok", "rejected": "no", "failed": "no"}.get(outcome, "other"),
        "started_at": report.started_at, "finished_at": report.finished_at,
        "error": redact(report.error) if report.error else None,
        "data": report.data, "decision": report.decision,
        "checks": report.decision.checks if report.decision is not None else [],
        "candidate": report.candidate, "active": report.active, "metrics": content.metric_rows(candidate, active),
        "newly": content.newly_wrong(rows) if has_pairs else None,
        "delta_chart": Markup(svg.delta_bars(deltas)), "delta_count": len(deltas),
        "confusion_chart": Markup(svg.heatmap(names, counts, label="confusion matrix of the most confused intents"))
        if len(names) >= 2 else "",
        "histograms": histograms,
        "fallback": content.fallback_rows(report.fallback), "fallback_info": report.fallback,
        "regressions": content.regressions(rows, deltas) if has_pairs else [],
        "entity_errors": errors, "entity_kinds": sorted(kinds.items()),
        "warnings": [redact(w) for w in report.warnings],
        "predictions_file": Path(predictions).name if predictions else None,
        "live": _mapping(report.sections.get("live")),  # with --messages only (docs/inbox.md); never in Slack
        "data_diff": _mapping(report.sections.get("data_diff")),  # relabels against the active model (check/held_out.py)
        "cv_search": _cv_search(report.sections.get("cv_search")),  # with --cv-folds and several --config
    }


def _cv_search(value) -> dict | None:
    """The ``cv_search`` section when it is whole enough to show (a stored report may be anything)."""
    value = _mapping(value)
    if not value or not isinstance(value.get("configs"), list) or not isinstance(value.get("folds"), int):
        return None
    rows = [c for c in value["configs"] if isinstance(c, Mapping) and isinstance(c.get("intent_f1"), Mapping)]
    return dict(value, configs=rows) if rows else None


def _mapping(value) -> dict | None:
    return dict(value) if isinstance(value, Mapping) else None


def render(report: RunReport | Mapping[str, Any], rows: list[dict]) -> str:
    return _environment().get_template(TEMPLATE).render(**context(report, rows))


def page_path(reports_dir: Path, stamp: str) -> Path:
    return Path(reports_dir) / f"{stamp}.html"


def html(report: RunReport | Mapping[str, Any], rows: list[dict] | None = None) -> str:
    """The page (rows: from ``report['predictions_file']`` unless given); the caller saves it beside the report."""
    report = RunReport.coerce(report)
    if rows is None:
        rows = load_predictions(report.sections.get("predictions_file"))
    return render(report, rows)


def read_report(path: Path) -> RunReport:
    """A stored run report (any outcome); a file that is not one is a ``DataError`` (one line, exit 2)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"{path}: cannot read the run report: {err.strerror or err}") from None
    except ValueError as err:
        raise DataError(f"{path}: not a JSON run report: {err}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: not a JSON run report: a {type(raw).__name__}, not an object")
    return RunReport.from_dict(raw)
