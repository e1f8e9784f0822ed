"""``nlu-ci check`` judged by the base: what ``commands/check.py`` runs instead of the bare pipeline.

1. ``--active-model-url`` (``NLU_CI_ACTIVE_MODEL_URL``): the active model is pulled from ``nlu-ci serve-models``
   (``serving.pull``) into a scratch store of this check; the nightly pipeline then runs (dry run) against
   that store, so nothing of the job's store is read or written. The review page and the report files are
   copied into ``--models-dir``'s ``<project>/reports`` afterwards (what CI keeps as an artifact).
2. ``--base-data`` (``NLU_CI_BASE_DATA``): the held-out set is the base branch's (``check.base_split``), and the
   policy is ``--base-policy`` (``NLU_CI_BASE_POLICY``) or the built-in one, never the branch's ``--policy``.
3. ``report["data_diff"]`` (``check.diff``) against the active model's data.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from nlu_ci.check import diff as data_diff
from nlu_ci.data import dataset
from nlu_ci.errors import NluCiError
from nlu_ci.redact import redact
from nlu_ci.registry.store import ModelStore, atomic_write_text
from nlu_ci.report.model import RunReport
from nlu_ci.serving.pull import pull_active

log = logging.getLogger(__name__)


def judged_settings(settings):
    """The settings the pipeline runs with: the base's policy whenever a base is given."""
    if settings.base_data is not None or settings.base_policy is not None:
        return dataclasses.replace(settings, policy=settings.base_policy)
    return settings


def run(settings, pipeline_run) -> dict[str, Any]:
    """Run the check (``pipeline_run``: the pipeline's ``run``); the report, with ``check`` and ``data_diff``."""
    judged = judged_settings(settings)
    info = {"policy": str(judged.policy) if judged.policy else None,
            "base_data": str(settings.base_data) if settings.base_data else None,
            "active_model_url": redact(settings.active_model_url) if settings.active_model_url else None}
    if not settings.active_model_url:
        report = pipeline_run(judged)
        _finish(report, settings, ModelStore(settings.models_dir, settings.project), info)
        return report
    with tempfile.TemporaryDirectory(prefix="nlu-ci-check-") as tmp:
        scratch = ModelStore(Path(tmp) / "models", settings.project)
        try:
            pulled = pull_active(settings.active_model_url, scratch, timeout=max(settings.http_timeout, 60.0))
        except NluCiError as err:  # nothing was checked: one line, the documented exit code, --report written
            log.error("%s", redact(str(err)))
            report = RunReport.coerce({"project": settings.project, "outcome": "failed", "error": redact(str(err)),
                                       "exit_code": err.exit_code, "warnings": [], "check": {"judged_by": info}})
            _rewrite(report, settings)
            return report
        info["active_model"] = pulled.name
        log.info("active model %s pulled from %s (checksums verified)", pulled.name, redact(pulled.url))
        report = pipeline_run(dataclasses.replace(judged, models_dir=scratch.root, platform_host=None,
                                                  evaluation="local"))
        _finish(report, settings, scratch, info)
        _keep_reports(report, scratch, ModelStore(settings.models_dir, settings.project))
    return report


def _finish(report: dict, settings, store: ModelStore, info: dict) -> None:
    report.setdefault("check", {})["judged_by"] = info
    if report.get("data_diff") is not None:  # the pipeline's (check/held_out.py: the active model's recorded labels too)
        _rewrite(report, settings)
        return
    try:
        section = _diff(settings, store, report)
    except NluCiError as err:  # the diff is information: a failure to compute it is a warning, not a verdict
        section = None
        report.setdefault("warnings", []).append(f"data diff: {err}")
    if section is not None:
        report["data_diff"] = section
        if section["relabelled"]:
            report.setdefault("warnings", []).append(
                f"data diff: {section['relabelled']} examples relabelled against {section['against']}")
    _rewrite(report, settings)


def _diff(settings, store: ModelStore, report: dict) -> dict | None:
    if settings.data is None:
        return None
    branch = [dataset.example_dict(m) for m in
              dataset.load_training_data(settings.data, max_repair_share=settings.max_repair_share).training_examples]
    base = None
    if settings.base_data is not None:
        base = dataset.load_training_data(settings.base_data, max_repair_share=settings.max_repair_share)
    active = store.active_name()
    model = data_diff.model_examples(store.path(active)) if active else None
    if model is not None:
        reference, against = list(model), f"the active model {active}'s training examples"
        if base is not None:
            held = dataset.hash_split(base, settings.test_fraction, settings.split_salt, settings.base_data).test
            reference += held
            against += " and the base branch's held-out examples"
        return data_diff.diff(reference, branch, against)
    if base is not None:
        return data_diff.diff([dataset.example_dict(m) for m in base.training_examples], branch,
                              "the base branch's data")
    return None


def _dump(report) -> str:
    doc = report.to_dict() if hasattr(report, "to_dict") else report  # the typed report, or its JSON
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def _rewrite(report: dict, settings) -> None:
    """The report files the pipeline wrote, again with the check's sections."""
    targets = [report.get("report_path"), str(settings.report) if settings.report else None]
    for target in filter(None, targets):
        with contextlib.suppress(OSError, NluCiError):
            atomic_write_text(Path(target), _dump(report))


def _keep_reports(report: dict, scratch: ModelStore, keep: ModelStore) -> None:
    """Copy the scratch store's reports (review page, report, predictions) to ``keep``; paths follow."""
    src = scratch.dir / "reports"
    if not src.is_dir():
        return
    dest = keep.dir / "reports"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, dest / f.name)
    except OSError as err:
        report.setdefault("warnings", []).append(f"cannot keep the check's reports in {dest}: {err.strerror or err}")
        return

    def moved(p: Any) -> Any:
        return str(dest / Path(p).name) if isinstance(p, str) and Path(p).parent == src else p

    for key in ("report_path", "predictions_file"):
        if key in report:
            report[key] = moved(report[key])
    page = report.get("review_page")
    if isinstance(page, dict) and "path" in page:
        page["path"] = moved(page["path"])
    if report.get("report_path"):
        with contextlib.suppress(OSError, NluCiError):
            atomic_write_text(Path(report["report_path"]), _dump(report))
