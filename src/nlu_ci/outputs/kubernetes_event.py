"""Kubernetes channel: an Event on the Job telling the run's outcome (in a cluster only). Never raises."""
from __future__ import annotations

from typing import Any

from nlu_ci.outputs import RunRecord
from nlu_ci.report.model import ModelScores, RunReport

OPTIONS: list = []  # the session (NLU_CI_KUBERNETES, POD_*, JOB_*) is the lock's: settings.py declares those
PULL_REQUEST = True  # an Event on the Job that ran the check, when it ran in a cluster


def _f1(scores: ModelScores | None) -> str:
    value = scores.intent_f1 if scores is not None else None
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def event_message(report: RunReport) -> str:
    """One line for the Event on the Job: what happened, the models, their intent F1, the reason."""
    outcome = report.outcome or "failed"
    cand, active, decision = report.candidate, report.active, report.decision
    cand_name, active_name = (cand.model if cand else None), (active.model if active else None)
    reason = (decision.reason if decision else None) or ""
    if outcome == "promoted":
        return f"promoted {cand_name} (intent_f1 {_f1(cand)}), was {active_name or 'none'} ({_f1(active)}): {reason}"
    if outcome == "rejected":
        return f"kept {active_name or 'none'} ({_f1(active)}), rejected {cand_name} (intent_f1 {_f1(cand)}): {reason}"
    if outcome == "dry_run":
        would = "" if decision is not None and decision.promote else "not "
        return f"dry run: {cand_name} intent_f1 {_f1(cand)}, would {would}promote: {reason}"
    if outcome == "skipped":
        return f"skipped: data and config unchanged since the active model {active_name}"
    if outcome == "locked":
        return f"locked: {report.error}"
    return f"failed (exit {report.exit_code}): {report.error}"


class KubernetesEventChannel:
    key = "kubernetes"

    def __init__(self, session):
        self.session = session

    def publish(self, report: RunReport, record: RunRecord) -> dict[str, Any]:
        ok = self.session.emit_event(report.outcome or "failed", event_message(report))
        return {"event": ok, "regarding": str(self.session.regarding()), "lease": self.session.lease_path,
                "lease_held": self.session.held}


def from_settings(settings, *, kube_session=None, **_services: Any) -> KubernetesEventChannel | None:
    return KubernetesEventChannel(kube_session) if kube_session is not None else None
