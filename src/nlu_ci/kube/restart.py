"""``kubectl rollout restart`` done the same way kubectl does it: patch the pod template annotation
``kubectl.kubernetes.io/restartedAt`` of the serving Deployment after a promotion."""
from __future__ import annotations

import logging
import re

import urllib3

from nlu_ci.errors import ConfigError, RuntimeFailure
from nlu_ci.kube import api
from nlu_ci.kube.api import RESTARTED_AT, STRATEGIC_MERGE, ApiException, _failure

log = logging.getLogger(__name__)


class RestartMixin:
    """Rollout-restart method of a KubeSession."""


    def restart_deployment(self, ref: str) -> str:
        """``kubectl rollout restart deployment/NAME``: patch the pod template's restartedAt annotation.

        ``ref`` is ``name`` (this namespace) or ``namespace/name``. Returns the timestamp written.
        Raises ConfigError for a malformed ref, RuntimeFailure when the API refuses.
        """
        namespace, name = parse_deployment_ref(ref, self.namespace)
        stamp = api._now().strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        try:
            self._api("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}", patch, STRATEGIC_MERGE)
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
            raise _failure(f"rollout restart of deployment {namespace}/{name} failed", err,
                           "patch on this deployment") from None
        log.info("rollout restart of deployment %s/%s (%s=%s)", namespace, name, RESTARTED_AT, stamp)
        return stamp


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def parse_deployment_ref(ref: str, default_namespace: str) -> tuple[str, str]:
    """``name`` or ``namespace/name`` -> (namespace, name); ConfigError naming the setting when malformed."""
    parts = str(ref).strip().removeprefix("deployment/").removeprefix("deployments/").split("/")
    if len(parts) == 1:
        namespace, name = default_namespace, parts[0]
    elif len(parts) == 2:
        namespace, name = parts
    else:
        namespace = name = ""
    if not _DNS_LABEL.match(namespace) or not _DNS_SUBDOMAIN.match(name):
        raise ConfigError(f"--restart-deployment / NLU_CI_RESTART_DEPLOYMENT: {ref!r} is not 'name' or "
                          "'namespace/name' of a Deployment")
    return namespace, name


def restart_after_promotion(session: RestartMixin | None, ref: str, report: dict) -> None:
    """Rollout-restart the serving Deployment after a promotion. Never raises: a failure is a warning
    in the report and a Warning Event (the new model is active either way; the servers load it on
    their next restart)."""
    if session is None:
        message = f"NLU_CI_RESTART_DEPLOYMENT={ref} but not running in a cluster (--kubernetes): no restart"
        log.warning("%s", message)
        report.setdefault("warnings", []).append(message)
        return
    try:
        stamp = session.restart_deployment(ref)
    except (ConfigError, RuntimeFailure) as err:
        log.error("%s", err)
        report.setdefault("warnings", []).append(str(err))
        report["restart"] = {"deployment": ref, "ok": False, "error": str(err)}
        session.emit_event("restart_failed", str(err))
        return
    report["restart"] = {"deployment": ref, "ok": True, "restarted_at": stamp}
    session.emit_event("restarted", f"rollout restart of deployment {ref} to load {(report.get('candidate') or {}).get('model')}")
