"""Kubernetes API plumbing: the official client's transport, time formats, errors, one session per run.

Times go on the wire as Kubernetes MicroTime strings (RFC 3339 with exactly six fraction digits):
the client would send ``datetime.isoformat()``, which drops the fraction when it is zero and is then
refused by the API server. So every body here is a plain dict.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from nlu_ci import redact
from nlu_ci.errors import LockedError, RuntimeFailure

log = logging.getLogger(__name__)


class ApiException(Exception):
    """A non-2xx answer of the API server (the client's ApiException, without importing the client)."""

    def __init__(self, status: int | None, reason: str | None, body: str | None = None):
        super().__init__(f"{status} {reason}")
        self.status, self.reason, self.body = status, reason, body


def _k8s():
    """The official client, imported on first use: it takes ~0.8 s, so only runs that talk to a
    cluster pay for it (``connect`` decides first, from the environment alone)."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException as ClientApiException
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    return client, config, ClientApiException, ConfigException, InClusterConfigLoader

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REPORTING_CONTROLLER = "nlu-ci"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
NOTE_LIMIT = 1024  # events.k8s.io/v1 note length limit
STRATEGIC_MERGE = "application/strategic-merge-patch+json"

# outcome -> (type, reason, action) of the Event
EVENT_KINDS: dict[str, tuple[str, str, str]] = {
    "promoted": ("Normal", "ModelPromoted", "Promote"),
    "rejected": ("Warning", "ModelRejected", "Promote"),
    "failed": ("Warning", "RunFailed", "Run"),
    "skipped": ("Normal", "RunSkipped", "Run"),
    "locked": ("Normal", "RunLocked", "Run"),
    "dry_run": ("Normal", "DryRun", "Run"),
    "restarted": ("Normal", "DeploymentRestarted", "Restart"),
    "restart_failed": ("Warning", "DeploymentRestartFailed", "Restart"),
}


def microtime(moment: datetime) -> str:
    """Kubernetes MicroTime: ``2026-01-02T03:04:05.000000Z`` (always six fraction digits)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def in_cluster(environ: dict[str, str] | None = None, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> bool:
    """True inside a pod with a service account token (what load_incluster_config needs)."""
    env = os.environ if environ is None else environ
    return bool(env.get("KUBERNETES_SERVICE_HOST")) and (sa_dir / "token").is_file()


def _one_line_api_error(err: ApiException) -> str:
    """``403 Forbidden: leases.coordination.k8s.io "nlu-ci" is forbidden: ...`` (the Status message)."""
    message = ""
    if err.body:
        try:
            message = json.loads(err.body).get("message", "")
        except (ValueError, AttributeError):
            message = str(err.body)[:200]
    return redact.redact(" ".join(f"{err.status} {err.reason or ''}: {message}".split()).rstrip(":"))


def _failure(what: str, err: BaseException, rbac_need: str | None = None) -> RuntimeFailure:
    """RuntimeFailure ``<what>: 403 Forbidden: <server message> (RBAC: ...)`` or ``<what>: <transport error>``."""
    if isinstance(err, ApiException):
        hint = f" (RBAC: the ServiceAccount needs {rbac_need})" if err.status == 403 and rbac_need else ""
        return RuntimeFailure(f"{what}: {_one_line_api_error(err)}{hint}")
    return RuntimeFailure(f"{what}: {type(err).__name__}: {redact.redact(err)}")


def _transient(err: BaseException) -> bool:
    if isinstance(err, ApiException):
        return err.status in (429, 500, 502, 503, 504) or err.status is None or err.status == 0
    return isinstance(err, urllib3.exceptions.HTTPError | OSError)


_retrying = retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(3),
                  wait=wait_exponential(multiplier=0.2, max=2), reraise=True)


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "namespace": self.namespace}
        if self.uid:
            out["uid"] = self.uid
        return out

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


class ApiSession:
    """One connection to the API server for one run (the Lease, Events and restart mixins build on it)."""

    def __init__(self, api_client: Any, *, namespace: str, identity: str, lease_name: str = "nlu-ci",
                 lease_duration: int = 7200, timeout: float = 10.0, pod_name: str | None = None,
                 pod_uid: str | None = None, job_name: str | None = None, job_uid: str | None = None,
                 source: str = "in-cluster", renew_every: float | None = None):
        self.api_client = api_client
        self.namespace = namespace
        self.identity = identity
        self.lease_name = lease_name
        self.lease_duration = int(lease_duration)
        self.timeout = timeout
        self.pod_name = pod_name
        self.pod_uid = pod_uid
        self.job_name = job_name
        self.job_uid = job_uid
        self.source = source
        self.held = False
        self.lost: LockedError | None = None  # set by the renewal thread when another run took the Lease
        self.renew_every = self.lease_duration / 3 if renew_every is None else renew_every
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        self._regarding: ObjectRef | None = None

    def __repr__(self) -> str:
        return f"KubeSession(namespace={self.namespace!r}, identity={self.identity!r}, source={self.source!r})"

    def _api(self, method: str, path: str, body: dict | None = None, content_type: str | None = None,
             query: list[tuple[str, str]] | None = None) -> dict:
        """One API call with the official client's transport, auth and TLS; JSON dicts in and out.

        The typed API methods would parse a body into pydantic models and re-serialise MicroTime
        fields with ``isoformat()`` (no fraction when it is zero: refused by the API server), so the
        bodies go through as plain JSON. Non-2xx raises ApiException; 429/5xx/connection errors are
        retried (3 attempts, exponential backoff).
        """
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self.api_client.param_serialize(method=method, resource_path=path, header_params=headers, body=body,
                                                 auth_settings=["BearerToken"], query_params=query)

        client_error = _k8s()[2]

        @_retrying
        def call() -> dict:
            try:
                response = self.api_client.call_api(*params, _request_timeout=self.timeout)
                response.read()
                return self.api_client.response_deserialize(response, {"2XX": "object"}).data
            except client_error as err:
                raise ApiException(err.status, err.reason, err.body) from None

        return call()

    def close(self) -> None:
        self._stop_keepalive()
        try:
            self.api_client.close()
        except Exception:  # closing is best effort
            pass
