"""Kubernetes API from inside the job: a Lease lock, Events on the Job, a rollout restart.

Only used in a cluster (auto-detected from the service account; ``--kubernetes on|off|auto``):

* ``acquire_lease`` / ``renew_lease`` / ``release_lease``: a ``coordination.k8s.io/v1`` Lease, so a
  manual run (``kubectl create job --from=cronjob/nlu-ci``) and the scheduled one never overlap.
  Optimistic concurrency: every write carries the ``resourceVersion`` it read; a 409 means another
  run wrote first. An expired Lease (``renewTime + leaseDurationSeconds`` in the past) is taken over.
  The PVC file lock (``registry.store``) stays as the fallback outside a cluster.
* ``emit_event``: an ``events.k8s.io/v1`` Event whose ``regarding`` is the Job that owns this pod
  (from the downward API labels, else from the pod's ownerReferences, else the pod itself), so
  ``kubectl describe job`` tells the story. Never raises: a failed Event is a warning.
* ``restart_deployment``: ``kubectl rollout restart`` done the same way kubectl does it, by
  patching the pod template annotation ``kubectl.kubernetes.io/restartedAt``.

Times go on the wire as Kubernetes MicroTime strings (RFC 3339 with exactly six fraction digits):
the client would send ``datetime.isoformat()``, which drops the fraction when it is zero and is then
refused by the API server. So every body here is a plain dict.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import urllib3
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from nlu_ci import redact
from nlu_ci.errors import ConfigError, LockedError, RuntimeFailure

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


class KubeSession:
    """One connection to the API server for one run. Create it with :func:`connect`."""

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

    def _api(self, method: str, path: str, body: dict | None = None, content_type: str | None = None) -> dict:
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
                                                 auth_settings=["BearerToken"])

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

    # ------------------------------------------------------------------ Lease

    @property
    def lease_path(self) -> str:
        return f"lease {self.namespace}/{self.lease_name}"

    @property
    def _lease_url(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    def _lease_call(self, what: str, method: str, path: str, body: dict | None = None) -> dict:
        try:
            return self._api(method, path, body)
        except ApiException as err:
            if err.status in (404, 409):
                raise
            raise _failure(f"Kubernetes API: cannot {what} {self.lease_path}", err,
                           "get/create/update on leases") from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise _failure(f"Kubernetes API: cannot {what} {self.lease_path}", err) from None

    def _read_lease(self) -> dict | None:
        try:
            return self._lease_call("read", "GET", f"{self._lease_url}/{self.lease_name}")
        except ApiException as err:
            if err.status == 404:
                return None
            raise RuntimeFailure(f"Kubernetes API: cannot read {self.lease_path}: {_one_line_api_error(err)}") from None

    def _lease_body(self, *, resource_version: str | None, holder: str | None, acquire: str | None,
                    renew: str | None, transitions: int, duration: int | None = None) -> dict:
        metadata: dict[str, Any] = {"name": self.lease_name, "namespace": self.namespace,
                                    "labels": {"app.kubernetes.io/name": "nlu-ci",
                                               "app.kubernetes.io/component": "lock"}}
        if resource_version:
            metadata["resourceVersion"] = resource_version
        spec: dict[str, Any] = {"leaseDurationSeconds": duration or self.lease_duration,
                                "leaseTransitions": transitions}
        if holder:
            spec["holderIdentity"] = holder
        if acquire:
            spec["acquireTime"] = acquire
        if renew:
            spec["renewTime"] = renew
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    @staticmethod
    def lease_expiry(spec: dict) -> datetime | None:
        """When the holder's claim ends: renewTime (or acquireTime) + leaseDurationSeconds."""
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        if renewed is None:
            return None
        return renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))

    def _locked(self, lease: dict, now: datetime) -> LockedError:
        spec = lease.get("spec") or {}
        expiry = self.lease_expiry(spec)
        left = f", expires in {int((expiry - now).total_seconds())} s" if expiry else ""
        return LockedError(f"{self.lease_path} is held by {spec.get('holderIdentity')} "
                           f"(renewed {spec.get('renewTime') or spec.get('acquireTime')}{left})")

    def _is_live_other(self, lease: dict, now: datetime) -> bool:
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if not holder or holder == self.identity:
            return False
        expiry = self.lease_expiry(spec)
        return expiry is not None and expiry > now

    def acquire_lease(self) -> None:
        """Take the Lease, or raise LockedError naming the live holder. An expired Lease is taken over.

        While held, a background thread renews it every ``lease_duration / 3`` seconds (like client-go's
        leader election), so a long training stage cannot let it expire; ``renew_lease`` raises
        LockedError once that thread has found the Lease taken by another run.
        """
        with self._lock:
            self._acquire()
        self._start_keepalive()

    def _acquire(self) -> None:
        now = _now()
        stamp = microtime(now)
        lease = self._read_lease()
        if lease is None:
            body = self._lease_body(resource_version=None, holder=self.identity, acquire=stamp, renew=stamp,
                                    transitions=0)
            try:
                self._lease_call("create", "POST", self._lease_url, body)
            except ApiException as err:  # 409 AlreadyExists: another run created it first
                lease = self._read_lease()
                if lease is not None and self._is_live_other(lease, _now()):
                    raise self._locked(lease, _now()) from None
                raise LockedError(f"{self.lease_path} was created by another run at the same moment "
                                  f"({err.status} {err.reason})") from None
            self.held = True
            log.info("acquired %s as %s", self.lease_path, self.identity)
            return
        if self._is_live_other(lease, now):
            raise self._locked(lease, now)
        spec = lease.get("spec") or {}
        previous = spec.get("holderIdentity")
        mine = previous == self.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=self.identity,
                                acquire=spec.get("acquireTime") if mine else stamp, renew=stamp,
                                transitions=transitions)
        self._replace_or_locked(body, "take over")
        self.held = True
        if previous and not mine:
            log.warning("took over expired %s from %s (renewed %s)", self.lease_path, previous,
                        spec.get("renewTime"))
        else:
            log.info("acquired %s as %s", self.lease_path, self.identity)

    def _replace_or_locked(self, body: dict, what: str) -> None:
        try:
            self._lease_call(what, "PUT", f"{self._lease_url}/{self.lease_name}", body)
        except ApiException as err:
            if err.status == 404:
                raise RuntimeFailure(f"Kubernetes API: {self.lease_path} was deleted while updating it") from None
            # 409 Conflict: somebody wrote the Lease after we read it
            current = self._read_lease() or {}
            holder = (current.get("spec") or {}).get("holderIdentity")
            raise LockedError(f"{self.lease_path} changed while taking it (409 Conflict); "
                              f"now held by {holder or 'nobody'}") from None

    def renew_lease(self) -> None:
        """Push renewTime forward. LockedError if another run has taken the Lease meanwhile."""
        if self.lost is not None:
            raise self.lost
        with self._lock:
            self._renew()

    def _renew(self) -> None:
        lease = self._read_lease()
        if lease is None:
            raise LockedError(f"{self.lease_path} disappeared while this run held it")
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            self.held = False
            raise LockedError(f"{self.lease_path} was taken over by {spec.get('holderIdentity') or 'nobody'} "
                              f"while this run worked (raise NLU_CI_LEASE_DURATION?)")
        body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=self.identity,
                                acquire=spec.get("acquireTime"), renew=microtime(_now()),
                                transitions=int(spec.get("leaseTransitions") or 0))
        self._replace_or_locked(body, "renew")
        log.debug("renewed %s", self.lease_path)

    def release_lease(self) -> bool:
        """Give the Lease up (holder cleared) if this run holds it. Never raises: returns success."""
        self._stop_keepalive()
        if not self.held:
            return False
        with self._lock:
            return self._release()

    def _release(self) -> bool:
        try:
            lease = self._read_lease()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.identity:
                log.warning("%s is no longer ours (holder %s): not released", self.lease_path,
                            spec.get("holderIdentity"))
                self.held = False
                return False
            stamp = microtime(_now())
            body = self._lease_body(resource_version=lease["metadata"].get("resourceVersion"), holder=None,
                                    acquire=None, renew=stamp, transitions=int(spec.get("leaseTransitions") or 0),
                                    duration=1)
            self._replace_or_locked(body, "release")
        except (RuntimeFailure, LockedError) as err:
            log.warning("could not release %s: %s (it expires by itself)", self.lease_path, err)
            return False
        self.held = False
        log.info("released %s", self.lease_path)
        return True

    def _start_keepalive(self) -> None:
        if self.renew_every <= 0 or (self._keepalive and self._keepalive.is_alive()):
            return
        self._stop.clear()
        self._keepalive = threading.Thread(target=self._keep_renewing, name="nlu-ci-lease", daemon=True)
        self._keepalive.start()

    def _stop_keepalive(self) -> None:
        self._stop.set()
        if self._keepalive is not None and self._keepalive is not threading.current_thread():
            self._keepalive.join(timeout=self.timeout * 3 + 5)
        self._keepalive = None

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                with self._lock:
                    if self._stop.is_set():
                        return
                    self._renew()
            except LockedError as err:
                self.lost = err
                log.error("%s", err)
                return
            except Exception as err:  # the API may come back before the Lease expires
                log.warning("could not renew %s: %s", self.lease_path, redact.redact(err))

    # ----------------------------------------------------------------- Events

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
            "eventTime": microtime(_now()),
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

    # ------------------------------------------------------- rollout restart

    def restart_deployment(self, ref: str) -> str:
        """``kubectl rollout restart deployment/NAME``: patch the pod template's restartedAt annotation.

        ``ref`` is ``name`` (this namespace) or ``namespace/name``. Returns the timestamp written.
        Raises ConfigError for a malformed ref, RuntimeFailure when the API refuses.
        """
        namespace, name = parse_deployment_ref(ref, self.namespace)
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
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


# ------------------------------------------------------------------- connect

def _setting(settings: Any, name: str, env: str | None = None) -> Any:
    value = getattr(settings, name, None)
    if value is None and env:
        value = os.environ.get(env) or None
    return value


def _kubeconfig_namespace(path: str) -> str | None:
    _client, config, _error, ConfigException, _loader = _k8s()
    try:
        _contexts, active = config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, TypeError):
        return None
    return ((active or {}).get("context") or {}).get("namespace")


def connect(settings: Any, *, sa_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeSession | None:
    """A session when the job should use the Kubernetes API, else None.

    ``settings.kubernetes``: ``off`` -> None; ``auto`` -> in-cluster config when running in a pod with a
    service account, else None; ``on`` -> in-cluster config, else the kubeconfig (``KUBECONFIG``), else
    ConfigError. The namespace is ``POD_NAMESPACE`` (downward API), else the service account's, else the
    kubeconfig context's, else ``default``. The Lease holder identity is the Job name (downward API),
    else the pod name, else host-pid.
    """
    mode = (getattr(settings, "kubernetes", "auto") or "auto").lower()
    if mode == "off":
        return None
    duration = getattr(settings, "lease_duration", None) or 7200
    if int(duration) < 15:
        raise ConfigError(f"--lease-duration / NLU_CI_LEASE_DURATION: {duration} s is too short (at least 15)")
    if getattr(settings, "restart_deployment", None):  # a typo fails now, not after the promotion
        parse_deployment_ref(settings.restart_deployment, "default")
    namespace = _setting(settings, "pod_namespace", "POD_NAMESPACE")
    if mode == "auto" and not in_cluster(sa_dir=sa_dir):
        log.debug("not in a Kubernetes pod: no Lease, no Events (file lock only)")
        return None
    client, config, _error, ConfigException, InClusterConfigLoader = _k8s()
    cfg = client.Configuration()
    if in_cluster(sa_dir=sa_dir):
        try:
            InClusterConfigLoader(token_filename=str(sa_dir / "token"),
                                  cert_filename=str(sa_dir / "ca.crt")).load_and_set(cfg)
        except ConfigException as err:
            raise ConfigError(f"Kubernetes in-cluster config: {err}") from None
        source = "in-cluster"
        if not namespace and (sa_dir / "namespace").is_file():
            namespace = (sa_dir / "namespace").read_text(encoding="utf-8").strip()
    else:
        # read KUBECONFIG now: the client's own default is frozen when it is imported
        where = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            config.load_kube_config(config_file=where, client_configuration=cfg)
        except (ConfigException, OSError, TypeError, ValueError) as err:
            raise ConfigError(f"--kubernetes on: not in a pod and no usable kubeconfig ({where}): "
                              f"{' '.join(str(err).split())}") from None
        source = f"kubeconfig {where}"
        namespace = namespace or _kubeconfig_namespace(where)
    cfg.retries = 1
    pod_name = _setting(settings, "pod_name", "POD_NAME")
    job_name = _setting(settings, "job_name", "JOB_NAME")
    # the Job, not the pod, holds the Lease: a retry pod of the same Job (after an OOM kill, say)
    # takes it back at once, while any other Job (a manual run, the next schedule) is locked out
    identity = job_name or pod_name or f"{socket.gethostname()}-{os.getpid()}"
    session = KubeSession(
        client.ApiClient(cfg), namespace=namespace or "default", identity=identity,
        lease_name=getattr(settings, "lease_name", None) or "nlu-ci",
        lease_duration=duration,
        timeout=float(getattr(settings, "http_timeout", None) or 10.0),
        pod_name=pod_name, pod_uid=_setting(settings, "pod_uid", "POD_UID"),
        job_name=job_name, job_uid=_setting(settings, "job_uid", "JOB_UID"),
        source=source)
    log.info("Kubernetes API via %s, namespace %s, identity %s", source, session.namespace, identity)
    return session


# ------------------------------------------------------------ for the pipeline

def _f1(section: dict | None) -> str:
    value = (section or {}).get("intent_f1")
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def event_message(report: dict) -> str:
    """One line for the Event on the Job: what happened, the models, their intent F1, the reason."""
    outcome = report.get("outcome") or "failed"
    cand, active = report.get("candidate") or {}, report.get("active") or {}
    reason = (report.get("decision") or {}).get("reason") or ""
    if outcome == "promoted":
        return (f"promoted {cand.get('model')} (intent_f1 {_f1(cand)}), was {active.get('model') or 'none'} "
                f"({_f1(active)}): {reason}")
    if outcome == "rejected":
        return (f"kept {active.get('model') or 'none'} ({_f1(active)}), rejected {cand.get('model')} "
                f"(intent_f1 {_f1(cand)}): {reason}")
    if outcome == "dry_run":
        return f"dry run: {cand.get('model')} intent_f1 {_f1(cand)}, would {'' if (report.get('decision') or {}).get('promote') else 'not '}promote: {reason}"
    if outcome == "skipped":
        return f"skipped: data and config unchanged since the active model {active.get('model')}"
    if outcome == "locked":
        return f"locked: {report.get('error')}"
    return f"failed (exit {report.get('exit_code')}): {report.get('error')}"


def restart_after_promotion(session: KubeSession | None, ref: str, report: dict) -> None:
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


def finish(session: KubeSession | None, report: dict) -> None:
    """End of a run: the Event telling its outcome, then the Lease released. Never raises."""
    if session is None:
        return
    try:
        ok = session.emit_event(report.get("outcome") or "failed", event_message(report))
        report["kubernetes"] = {"event": ok, "regarding": str(session.regarding()), "lease": session.lease_path,
                                "lease_held": session.held}
        session.release_lease()
    finally:
        session.close()
