"""The kustomize trees: render, validate strictly, carry every field the job relies on."""
from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from kubernetes_validate import utils as kv

from nlu_ci import kube
from nlu_ci.errors import RuntimeFailure

from .conftest import NS
from .fake_apiserver import deployment
from .manifests import (
    CRD_GROUPS,
    K8S,
    ROOT,
    TREES,
    find,
    one,
    pod_spec,
    render,
    restricted_violations,
)

K8S_VERSION = kv.latest_version()  # the newest Kubernetes release the validator ships schemas for


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env") or []}


def cronjob(tree: str = "k8s") -> dict:
    return one(render(tree), "CronJob", "nlu-ci")


# ---------------------------------------------------------------------------- render + validate

@pytest.mark.parametrize("tree", TREES)
def test_tree_renders_with_everything_namespaced(tree):
    docs = render(tree)
    namespace = one(docs, "Namespace")["metadata"]["name"]
    for kind in ("CronJob", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "NetworkPolicy"):
        assert find(docs, kind), f"{tree}: no {kind}"
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{tree}: {doc['kind']} {doc['metadata']['name']}"
    for rb in find(docs, "RoleBinding"):
        for subject in rb["subjects"]:
            assert subject["namespace"] == namespace, f"{tree}: RoleBinding subject in another namespace"
    assert not find(docs, "Secret"), "a Secret must never be applied from the repo (only the example exists)"


@pytest.mark.parametrize("tree", TREES)
def test_every_object_validates_strictly(tree):
    skipped = []
    for doc in render(tree):
        if doc["apiVersion"].startswith(CRD_GROUPS):
            # no schema in kubernetes-validate for CRDs: checked below (promtool, shape)
            skipped.append(doc["kind"])
            continue
        kv.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError with the path
    if tree == "k8s/overlays/prod":
        assert sorted(skipped) == ["PrometheusRule", "ServiceMonitor"]


def test_strict_validation_would_catch_a_typo():
    """Negative control: the validator really rejects unknown and mistyped fields."""
    bad = copy.deepcopy(cronjob())
    bad["spec"]["jobTemplate"]["spec"]["backofLimit"] = 2
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)
    bad = copy.deepcopy(cronjob())
    bad["spec"]["startingDeadlineSeconds"] = "an hour"
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)


# ---------------------------------------------------------------------------- the CronJob

def test_cronjob_schedule_and_job_limits():
    spec = cronjob()["spec"]
    assert spec["schedule"] == "0 0 * * *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 24 * 3600
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 1
    assert 0 < job["activeDeadlineSeconds"] < 24 * 3600  # a run ends before the next one is due
    assert job["ttlSecondsAfterFinished"] > 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"  # podFailurePolicy requires it


def test_exit_code_2_fails_the_job_at_once():
    job = cronjob()["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    (rule,) = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert rule["onExitCodes"] == {"containerName": container["name"], "operator": "In", "values": [2]}
    from nlu_ci.errors import ConfigError, DataError, RuntimeFailure

    assert ConfigError.exit_code == DataError.exit_code == 2 and RuntimeFailure.exit_code == 1


def test_secret_token_config_models_tmp_are_mounted_where_the_settings_point():
    docs = render("k8s")
    spec = pod_spec(cronjob())
    (container,) = spec["containers"]
    env = env_of(container)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}

    def volume_at(path: str) -> dict:
        parent = max((p for p in mounts if path == p or path.startswith(p.rstrip("/") + "/")), key=len)
        return volumes[mounts[parent]["name"]]

    token = env["RASA_API_TOKEN_FILE"]["value"]
    assert "RASA_API_TOKEN" not in env  # the token only as a file
    secret_vol = volume_at(token)
    assert secret_vol["secret"]["secretName"] == "nlu-ci-secrets" and mounts[token.rsplit("/", 1)[0]]["readOnly"]
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert token.rsplit("/", 1)[1] in example["stringData"]
    assert example["metadata"]["name"] == "nlu-ci-secrets"
    assert all(v.startswith("<") and v.endswith(">") for v in example["stringData"].values()), "no real value"
    kv.validate(example, K8S_VERSION, strict=True)

    config_vol = volume_at(env["NLU_CI_CONFIG"]["value"])
    config_map = one(docs, "ConfigMap", config_vol["configMap"]["name"])
    for key in ("NLU_CI_CONFIG", "NLU_CI_POLICY"):
        assert env[key]["value"].rsplit("/", 1)[1] in config_map["data"]
    policy = yaml.safe_load(config_map["data"]["policy.yml"])
    assert policy.get("must_pass") in config_map["data"]  # must_pass.yml sits next to policy.yml

    models = volume_at(env["NLU_CI_MODELS_DIR"]["value"])
    one(docs, "PersistentVolumeClaim", models["persistentVolumeClaim"]["claimName"])
    assert "emptyDir" in volume_at("/tmp") and volume_at("/tmp")["emptyDir"]["sizeLimit"]
    assert env["HOME"]["value"] == "/tmp"


def test_downward_api_and_settings_environment_names_are_real_options():
    from nlu_ci.settings import OPTIONS

    known = {o.env for o in OPTIONS} | {o.secret_file_env for o in OPTIONS if o.secret_file_env}
    known |= {"HOME"}
    docs = render("k8s/overlays/prod")
    (container,) = pod_spec(one(docs, "CronJob"))["containers"]
    env = env_of(container)
    assert set(env) <= known, sorted(set(env) - known)
    assert set(settings_data(docs)) <= known, sorted(set(settings_data(docs)) - known)
    fields = {k: v["valueFrom"]["fieldRef"]["fieldPath"] for k, v in env.items() if "valueFrom" in v}
    assert fields == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid",
                      "JOB_NAME": "metadata.labels['batch.kubernetes.io/job-name']",
                      "JOB_UID": "metadata.labels['batch.kubernetes.io/controller-uid']"}


@pytest.mark.parametrize("tree", TREES)
def test_pod_security_restricted_and_read_only_root(tree):
    docs = render(tree)
    assert one(docs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    workloads = find(docs, "CronJob") + find(docs, "Deployment")
    assert workloads
    for obj in workloads:
        spec = pod_spec(obj)
        assert restricted_violations(spec) == [], obj["metadata"]["name"]
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and {"cpu", "memory"} <= set(res["limits"])


def test_restricted_check_would_catch_a_violation():
    spec = copy.deepcopy(pod_spec(cronjob()))
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert len(restricted_violations(spec)) == 2


def test_image_user_matches_the_pod_user():
    dockerfile = (ROOT / "image" / "Dockerfile").read_text()
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")][-1]
    sc = pod_spec(cronjob())["securityContext"]
    assert user == f"{sc['runAsUser']}:{sc['runAsGroup']}"


# ---------------------------------------------------------------------------- config copies, monitoring

def test_kustomize_copies_match_their_sources():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_k8s.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (config_volume,) = [v for v in pod_spec(cronjob())["volumes"] if "configMap" in v]
    data = one(render("k8s"), "ConfigMap", config_volume["configMap"]["name"])["data"]
    for name in ("nlu_config.yml", "policy.yml", "must_pass.yml"):
        assert data[name] == (ROOT / name).read_text(), name


def test_grafana_dashboard_configmap():
    docs = render("k8s")
    cm = one(docs, "ConfigMap", "nlu-ci-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    sources = sorted((ROOT / "monitoring").glob("*.json"))
    assert sorted(cm["data"]) == [p.name for p in sources]
    for p in sources:
        assert json.loads(cm["data"][p.name]) == json.loads(p.read_text())


def test_prometheus_rule_is_the_alert_rules_file(tmp_path):
    docs = render("k8s/overlays/prod")
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((ROOT / "monitoring" / "alerts.rules.yml").read_text())
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service", "pushgateway")
    assert all(service["metadata"]["labels"].get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus): rule syntax not checked")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def settings_data(docs) -> dict:
    (container,) = pod_spec(one(docs, "CronJob"))["containers"]
    return one(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]


def test_pushgateway_component_wires_the_url():
    docs = render("k8s/overlays/dev")
    service = one(docs, "Service", "pushgateway")
    gateway = one(docs, "Deployment", "pushgateway")
    port = service["spec"]["ports"][0]["port"]
    assert settings_data(docs)["PUSHGATEWAY_URL"] == f"http://{service['metadata']['name']}:{port}"
    assert service["spec"]["selector"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    assert "@sha256:" in pod_spec(gateway)["containers"][0]["image"]
    assert "PUSHGATEWAY_URL" not in settings_data(render("k8s"))  # optional: only with the component


# ---------------------------------------------------------------------------- RBAC = what kube.py uses

def rules_for(docs, service_account: str = "nlu-ci") -> list[dict]:
    roles = {r["metadata"]["name"]: r for r in find(docs, "Role")}
    out: list[dict] = []
    for rb in find(docs, "RoleBinding"):
        if any(s["kind"] == "ServiceAccount" and s["name"] == service_account for s in rb["subjects"]):
            out += roles[rb["roleRef"]["name"]]["rules"]
    return out


def connect(pod_name: str):
    import os
    from types import SimpleNamespace

    return kube.connect(SimpleNamespace(kubernetes="on", pod_name=pod_name, pod_namespace=None, lease_name="nlu-ci",
                                        lease_duration=60, http_timeout=5.0, job_name=os.environ.get("JOB_NAME"),
                                        job_uid=os.environ.get("JOB_UID"), pod_uid=None))


def test_the_role_allows_exactly_what_the_job_does(kubeconfig, apiserver, monkeypatch):
    from nlu_ci.settings import BY_NAME

    docs = render("k8s")
    apiserver.allow(rules_for(docs))
    monkeypatch.setenv("JOB_NAME", "nlu-ci-29120000")
    monkeypatch.setenv("JOB_UID", "uid-1")
    s = connect("nlu-ci-29120000-abcde")
    s.acquire_lease()
    s.renew_lease()
    assert s.emit_event("promoted", "promoted") is True
    assert s.release_lease() is True
    assert [r["status"] for r in apiserver.requests if r["status"] in (401, 403)] == []
    lease_names = [r.get("resourceNames") for r in rules_for(docs) if "leases" in r["resources"]]
    assert [BY_NAME["lease_name"].default] in lease_names
    # no restart without the rollout-restart component
    apiserver.put("deployments", deployment(NS, "rasa-nlu"))
    with pytest.raises(RuntimeFailure, match="403 Forbidden.*RBAC: the ServiceAccount needs patch"):
        s.restart_deployment("rasa-nlu")


def test_rollout_restart_component_allows_only_its_deployment(kubeconfig, apiserver):
    docs = render("k8s/overlays/prod")
    apiserver.allow(rules_for(docs))
    target = settings_data(docs)["NLU_CI_RESTART_DEPLOYMENT"]
    apiserver.put("deployments", deployment(NS, target))
    apiserver.put("deployments", deployment(NS, "something-else"))
    s = connect("pod-1")
    s.restart_deployment(target)
    assert kube.RESTARTED_AT in apiserver.get("deployments", NS, target)["spec"]["template"]["metadata"]["annotations"]
    with pytest.raises(RuntimeFailure, match="403"):
        s.restart_deployment("something-else")


# ---------------------------------------------------------------------------- make deploy

@pytest.mark.parametrize("image,expected", [
    ("registry:5000/ml/nlu-ci:0.2.0", "registry:5000/ml/nlu-ci:0.2.0"),
    ("ghcr.io/acme/nlu-ci@sha256:" + "a" * 64, "ghcr.io/acme/nlu-ci@sha256:" + "a" * 64),
])
def test_make_deploy_sets_the_image_on_any_overlay(image, expected):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for overlay in TREES:
        proc = subprocess.run(["make", "-s", "deploy-manifests", f"IMAGE={image}", f"OVERLAY={overlay}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
        (container,) = pod_spec(one(docs, "CronJob", "nlu-ci"))["containers"]
        assert container["image"] == expected, overlay
