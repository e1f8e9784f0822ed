"""Events: an ``events.k8s.io/v1`` Event whose ``regarding`` is the Job that owns this pod (from the downward
API labels, else from the pod's ownerReferences, else the pod itself), so ``kubectl describe job`` tells the
story. Never raises: a failed Event is a warning."""
from __future__ import annotations

import logging
import re
from typing import Any

import urllib3

from nlu_ci import redact
from nlu_ci.kube import api
from nlu_ci.kube.api import (
    EVENT_KINDS,
    NOTE_LIMIT,
    REPORTING_CONTROLLER,
    ApiException,
    ObjectRef,
    _one_line_api_error,
    microtime,
)

log = logging.getLogger(__name__)


class EventsMixin:
    """Event methods of a KubeSession."""


    def regarding(self) -> ObjectRef:
        """The Job owning this pod (downward API labels, else the pod's ownerReferences), else the pod,
        else (outside a pod) the Lease."""
        if self._regarding is not None:
            return self._regarding
        ref: ObjectRef | None = None
        if self.job_name:
            ref = ObjectRef("batch/v1", "Job", self.job_name, self.namespace, self.job_uid)
        elif self.pod_name:
            ref = ObjectRef("v1", "Pod", self.pod_name, self.namespace, self.pod_uid)
            try:
                pod = self._api("GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}")
                meta = pod.get("metadata") or {}
                ref = ObjectRef("v1", "Pod", self.pod_name, self.namespace, meta.get("uid") or self.pod_uid)
                for owner in meta.get("ownerReferences") or []:
                    if owner.get("kind") == "Job":
                        ref = ObjectRef(owner.get("apiVersion", "batch/v1"), "Job", owner["name"], self.namespace,
                                        owner.get("uid"))
                        break
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
                status = getattr(err, "status", None)
                log.debug("cannot read pod %s to find its Job (%s): events go to the pod", self.pod_name, status)
        if ref is None:
            ref = ObjectRef("coordination.k8s.io/v1", "Lease", self.lease_name, self.namespace)
        self._regarding = ref
        return ref

    def event_body(self, outcome: str, message: str) -> dict:
        kind, reason, action = EVENT_KINDS.get(
            outcome, ("Normal", "Run" + "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]+", outcome)), "Run"))
        regarding = self.regarding()
        note = redact.redact(" ".join(str(message).split()))
        if len(note.encode("utf-8")) > NOTE_LIMIT:
            note = note.encode("utf-8")[: NOTE_LIMIT - 3].decode("utf-8", "ignore") + "..."
        body: dict[str, Any] = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"generateName": f"{regarding.name[:200]}.", "namespace": self.namespace,
                         "labels": {"app.kubernetes.io/name": "nlu-ci"}},
            "eventTime": microtime(api._now()),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": (self.pod_name or self.identity)[:128],
            "action": action, "reason": reason, "type": kind, "note": note,
            "regarding": regarding.to_dict(),
        }
        if self.pod_name and regarding.kind != "Pod":
            related = {"apiVersion": "v1", "kind": "Pod", "name": self.pod_name, "namespace": self.namespace}
            if self.pod_uid:
                related["uid"] = self.pod_uid
            body["related"] = related
        return body

    def emit_event(self, outcome: str, message: str) -> bool:
        """Record an Event about this run on its Job. Never raises (a warning instead); returns success."""
        try:
            body = self.event_body(outcome, message)
            self._api("POST", f"/apis/events.k8s.io/v1/namespaces/{self.namespace}/events", body)
        except ApiException as err:
            log.warning("could not record the Kubernetes Event %r: %s", outcome, _one_line_api_error(err))
            return False
        except Exception as err:  # never let an Event break the run
            log.warning("could not record the Kubernetes Event %r: %s: %s", outcome, type(err).__name__,
                        redact.redact(err))
            return False
        log.info("event %s %s on %s", body["type"], body["reason"], body["regarding"]["kind"].lower() + "/"
                 + body["regarding"]["name"])
        return True
