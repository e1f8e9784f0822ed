"""Helpers for the manifest tests: render kustomize trees, find objects, Pod Security checks."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
TREES = ["k8s", "k8s/overlays/dev", "k8s/overlays/prod", "k8s/overlays/multi-project"]
RESTART_TREE = "tests/k8s/trees/rollout-restart"  # k8s/ + components/rollout-restart (no overlay lists it)
K8S_FLOOR = 31  # the oldest Kubernetes minor the README supports (1.31: podFailurePolicy GA)


def supported_versions() -> list[str]:
    """Every Kubernetes minor from the README's floor to the newest the validator ships schemas for."""
    from kubernetes_validate import utils as kv

    newest = int(kv.latest_version().split(".")[1])
    return [f"1.{minor}.0" for minor in range(K8S_FLOOR, newest + 1)]
CRD_GROUPS = ("monitoring.coreos.com/",)  # kinds whose schema comes from a CRD, not from Kubernetes


def need_kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with kustomize) is not installed: apt-get install kubectl")
    return kubectl


def offline_env() -> dict[str, str]:
    """kubectl with no cluster: its dispatcher would otherwise ask the KUBECONFIG server for /version."""
    return {**os.environ, "KUBECONFIG": os.devnull}


@functools.cache
def render(tree: str) -> tuple[dict, ...]:
    proc = subprocess.run([need_kubectl(), "kustomize", str(ROOT / tree)], capture_output=True, text=True,
                          timeout=120, env=offline_env())
    assert proc.returncode == 0, f"kubectl kustomize {tree} failed: {proc.stderr}"
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def find(docs, kind: str, name: str | None = None) -> list[dict]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs, kind: str, name: str | None = None) -> dict:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


# Pod Security Standards, "restricted" profile (kubernetes.io/docs/concepts/security/pod-security-standards)
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_violations(spec: dict) -> list[str]:
    """What in a pod spec the restricted profile forbids (empty list: admitted)."""
    out: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append(flag)
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {vol['name']}: {sorted(kinds)}")
    if pod_sc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in (spec.get("initContainers") or []) + spec["containers"]:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        if not (sc.get("runAsNonRoot") is True or (pod_sc.get("runAsNonRoot") is True
                                                     and sc.get("runAsNonRoot") is not False)):
            out.append(f"{name}: runAsNonRoot")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile RuntimeDefault or Localhost")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort")
    return out
