"""Connect: one KubeSession (Lease, Events, restart, Jobs) when the job should use the Kubernetes API, else None."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from nlu_ci.errors import ConfigError
from nlu_ci.kube.api import SERVICE_ACCOUNT_DIR, ApiSession, _k8s, in_cluster
from nlu_ci.kube.events import EventsMixin
from nlu_ci.kube.jobs import JobsMixin
from nlu_ci.kube.lease import LeaseMixin
from nlu_ci.kube.restart import RestartMixin, parse_deployment_ref

log = logging.getLogger(__name__)


class KubeSession(LeaseMixin, EventsMixin, RestartMixin, JobsMixin, ApiSession):
    """One connection to the API server for one run. Create it with :func:`connect`."""


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
    namespace = getattr(settings, "pod_namespace", None)
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
    pod_name = getattr(settings, "pod_name", None)
    job_name = getattr(settings, "job_name", None)
    # the Job, not the pod, holds the Lease: a retry pod of the same Job (after an OOM kill, say)
    # takes it back at once, while any other Job (a manual run, the next schedule) is locked out
    identity = job_name or pod_name or f"{socket.gethostname()}-{os.getpid()}"
    session = KubeSession(
        client.ApiClient(cfg), namespace=namespace or "default", identity=identity,
        lease_name=getattr(settings, "lease_name", None) or "nlu-ci",
        lease_duration=duration,
        timeout=float(getattr(settings, "http_timeout", None) or 10.0),
        pod_name=pod_name, pod_uid=getattr(settings, "pod_uid", None),
        job_name=job_name, job_uid=getattr(settings, "job_uid", None),
        source=source)
    log.info("Kubernetes API via %s, namespace %s, identity %s", source, session.namespace, identity)
    return session
