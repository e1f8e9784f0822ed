"""The ``validate`` stage of ``run``: repairs, notes and data check findings into the report and its warnings;
with ``--strict-data`` (``NLU_CI_STRICT_DATA``) a warning fails the run (exit 2)."""
from __future__ import annotations

import logging

from nlu_ci.data import Notes, checks, cleaning, notes_of
from nlu_ci.errors import DataError

log = logging.getLogger(__name__)

MAX_LISTED = 200  # repairs listed in the report (their count is always complete)


def data_section(notes: Notes, test_notes: Notes | None, findings: list[dict]) -> dict:
    test_repairs = test_notes.repairs if test_notes else []
    return {
        "repaired_examples": cleaning.touched(notes.repairs) + cleaning.touched(test_repairs),
        "repairs": notes.repairs[:MAX_LISTED],
        "test_repairs": test_repairs[:MAX_LISTED],
        "notes": notes.notes + (test_notes.notes if test_notes else []),
        "skipped_files": notes.skipped + (test_notes.skipped if test_notes else []),
        "validation": {"findings": findings,
                       "errors": sum(f["severity"] == "error" for f in findings),
                       "warnings": sum(f["severity"] == "warning" for f in findings)},
    }


def check_intent_count(settings, data) -> None:
    """More intents than ``--max-intents``: refused before training (100,000 intents crash the classifier's
    training in native code under a 4 GB memory limit: no report, no history line)."""
    limit = getattr(settings, "max_intents", None)
    intents = {m.get("intent") for m in data.training_examples if m.get("intent")}
    if limit and len(intents) > limit:
        raise DataError(f"{settings.data}: {len(intents)} intents, over the limit of {limit} (--max-intents / "
                        "NLU_CI_MAX_INTENTS; memory grows with intents x features)")


def run_stage(settings, data, split, warnings: list[str]) -> dict:
    """The report's data quality section (repairs, notes, validation); each finding that is not info goes to
    ``warnings`` (``enforce`` then fails the run under ``--strict-data``). Too many intents: ``DataError``."""
    check_intent_count(settings, data)
    notes, test_notes = notes_of(data), split.test_notes
    hash_split = split.params.get("method") == "hash"
    findings = checks.run_checks(data, notes, test=None if hash_split else split.test, test_notes=test_notes,
                                 hash_split=hash_split)
    for f in findings:
        if f["severity"] != "info":
            warnings.append(f"data check {f['check']}: {f['message']}")
            log.warning("data check %s: %s", f["check"], f["message"])
    return data_section(notes, test_notes, findings)


def enforce(settings, section: dict) -> None:
    """``DataError`` when ``settings.strict_data`` and a check of ``section`` (``run_stage``'s) warned."""
    failed = checks.failing(section["validation"]["findings"], settings.strict_data)
    if failed:
        raise DataError(f"{settings.data}: data check {failed[0]['check']} failed (--strict-data): "
                        f"{failed[0]['message']}")
