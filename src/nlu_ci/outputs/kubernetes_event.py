"""Kubernetes channel: an Event on the Job telling the run's outcome (in a cluster only). Never raises."""
from __future__ import annotations

from typing import Any

from nlu_ci.kube import event_message
from nlu_ci.outputs import RunRecord


class KubernetesEventChannel:
    key = "kubernetes"

    def __init__(self, session):
        self.session = session

    def publish(self, report: dict[str, Any], record: RunRecord) -> dict[str, Any]:
        ok = self.session.emit_event(report.get("outcome") or "failed", event_message(report))
        return {"event": ok, "regarding": str(self.session.regarding()), "lease": self.session.lease_path,
                "lease_held": self.session.held}


def from_settings(settings, *, kube_session=None, **_services: Any) -> KubernetesEventChannel | None:
    return KubernetesEventChannel(kube_session) if kube_session is not None else None
