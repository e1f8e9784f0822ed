"""The kustomize trees: render, validate strictly, carry every field the job relies on."""
from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from kubernetes_validate import utils as kv

from nlu_ci import kube
from nlu_ci.errors import RuntimeFailure
from support.kube_fake import deployment

from .conftest import NS
from .manifests import (
    CRD_GROUPS,
    K8S,
    K8S_FLOOR,
    RESTART_TREE,
    ROOT,
    TREES,
    find,
    one,
    pod_spec,
    render,
    restricted_violations,
    supported_versions,
)

K8S_VERSION = kv.latest_version()  # the newest Kubernetes release the validator ships schemas for
VERSIONS = supported_versions()


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


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("tree", TREES)
def test_every_object_validates_strictly_on_every_supported_version(tree, version):
    skipped = []
    for doc in render(tree):
        if doc["apiVersion"].startswith(CRD_GROUPS):
            # no schema in kubernetes-validate for CRDs: checked below (promtool, shape)
            skipped.append(doc["kind"])
            continue
        kv.validate(doc, version, strict=True)  # raises ValidationError with the path
    if tree == "k8s/overlays/prod":
        assert sorted(skipped) == ["PodMonitor", "PrometheusRule", "ServiceMonitor"]  # + serving-monitoring


def test_the_readme_floor_is_the_tested_floor():
    readme = (ROOT / "README.md").read_text()
    assert f"Kubernetes 1.{K8S_FLOOR} or newer" in readme
    assert f"every minor version from 1.{K8S_FLOOR}" in readme
    assert VERSIONS[0] == f"1.{K8S_FLOOR}.0" and len(VERSIONS) >= 5


def test_pod_failure_policy_without_status_is_rejected_before_1_34():
    """Negative control: the per-version validation is what catches the missing status (1.31-1.33)."""
    job = cronjob()["spec"]["jobTemplate"]["spec"]
    (rule,) = [r for r in job["podFailurePolicy"]["rules"] if "onPodConditions" in r]
    assert rule["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    bad = copy.deepcopy(cronjob())
    for r in bad["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]:
        for cond in r.get("onPodConditions", []):
            del cond["status"]
    with pytest.raises(kv.ValidationError, match="status"):
        kv.validate(bad, VERSIONS[0], strict=True)


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

    # the pipeline config(s) in the settings ConfigMap, where an overlay can list several (the CronJob's env
    # would win over it: the cv search of components/parallel-search then never saw a second config)
    assert "NLU_CI_CONFIG" not in env
    configs = settings_data(docs)["NLU_CI_CONFIG"].split(",")
    config_vol = volume_at(configs[0])
    config_map = one(docs, "ConfigMap", config_vol["configMap"]["name"])
    for path in [*configs, env["NLU_CI_POLICY"]["value"]]:
        assert volume_at(path) == config_vol and path.rsplit("/", 1)[1] in config_map["data"]
    policy = yaml.safe_load(config_map["data"]["policy.yml"])
    assert policy.get("must_pass") is False and "must_pass.yml" not in config_map["data"]  # the sample's stays in data/

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
    assert sorted(data) == ["nlu_config.yml", "policy.yml"]  # the shipped policy is the built-in one: no must-pass
    for name in ("nlu_config.yml", "policy.yml"):
        assert data[name] == (ROOT / name).read_text(), name


def test_grafana_dashboard_configmap():
    docs = render("k8s")
    cm = one(docs, "ConfigMap", "nlu-ci-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    sources = sorted((ROOT / "monitoring").glob("*.json"))
    assert sorted(cm["data"]) == [p.name for p in sources]
    for p in sources:
        assert json.loads(cm["data"][p.name]) == json.loads(p.read_text())


RUNBOOK_BASE = "https://git.example.com/ml/nlu-ci/blob/main/docs"  # components/prometheus-rules' placeholder


def runbook_urls(spec: dict) -> dict[str, str]:
    return {r["alert"]: r["annotations"]["runbook_url"] for g in spec["groups"] for r in g["rules"] if "alert" in r}


def test_prometheus_rule_is_the_alert_rules_file(tmp_path):
    """The alert rules file, but for the runbook links, made absolute (the next test)."""
    docs = render("k8s/overlays/prod")
    rule = one(docs, "PrometheusRule")
    source = yaml.safe_load((ROOT / "monitoring" / "alerts.rules.yml").read_text())
    relative = runbook_urls(source)
    assert relative and all(u.startswith("docs/runbook.md#") for u in relative.values())
    for group in source["groups"]:
        for r in group["rules"]:
            if "alert" in r:
                r["annotations"]["runbook_url"] = RUNBOOK_BASE + r["annotations"]["runbook_url"][len("docs"):]
    assert rule["spec"] == source
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


def test_runbook_urls_are_absolute_with_a_base_an_overlay_sets():
    rule = one(render("k8s/overlays/prod"), "PrometheusRule")
    urls = runbook_urls(rule["spec"])
    assert urls and all(u == f"{RUNBOOK_BASE}/runbook.md#{alert.lower()}" for alert, u in urls.items()), urls
    assert not find(render("k8s/overlays/prod"), "ConfigMap", "nlu-ci-runbook-base")  # local-config: not applied
    # the README's snippet, in an overlay of prod
    readme = (ROOT / "README.md").read_text()
    (snippet,) = [b.split("\n", 1)[1] for b in readme.split("```yaml")[1:] if "name: runbook-base" in b]
    snippet = snippet.split("```")[0]
    where = ROOT / "var" / "test-runbook-base"
    where.mkdir(parents=True, exist_ok=True)
    (where / "kustomization.yaml").write_text("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
                                              "resources: [../../k8s/overlays/prod]\n" + snippet)
    try:
        docs = render("var/test-runbook-base")
    finally:
        shutil.rmtree(where)
    urls = runbook_urls(one(docs, "PrometheusRule")["spec"])
    assert all(u == f"https://github.com/acme/nlu-ci/blob/main/docs/runbook.md#{a.lower()}" for a, u in urls.items())
    assert not find(docs, "ConfigMap", "runbook-base")


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
    granted = {(verb, group, resource) for rule in rules_for(docs) for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert granted == apiserver.authorised  # exactly: no verb or resource the job never uses
    lease_names = [r.get("resourceNames") for r in rules_for(docs) if "leases" in r["resources"]]
    assert [BY_NAME["lease_name"].default] in lease_names
    # no restart without the rollout-restart component
    apiserver.put("deployments", deployment(NS, "rasa-nlu"))
    with pytest.raises(RuntimeFailure, match="403 Forbidden.*RBAC: the ServiceAccount needs patch"):
        s.restart_deployment("rasa-nlu")


def test_rollout_restart_component_allows_only_its_deployment(kubeconfig, apiserver):
    docs = render(RESTART_TREE)
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

WORKLOADS = ("CronJob", "Deployment", "StatefulSet", "DaemonSet", "Job")


def container_images(docs) -> dict[str, str]:
    """Every container and initContainer of every workload: "Kind/name/container" -> image."""
    return {f"{d['kind']}/{d['metadata']['name']}/{c['name']}": c["image"] for d in docs if d["kind"] in WORKLOADS
            for c in (pod_spec(d).get("initContainers") or []) + pod_spec(d)["containers"]}


def nlu_ci_images(docs) -> dict[str, str]:
    """The containers that run nlu-ci (not the Pushgateway's image)."""
    return {k: v for k, v in container_images(docs).items() if "/pushgateway/" not in k}


def deploy_manifests(overlay: str, image: str | None) -> list[dict]:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k != "IMAGE"}
    args = ["make", "-s", "deploy-manifests", f"OVERLAY={overlay}"] + ([f"IMAGE={image}"] if image else [])
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.mark.parametrize("image", ["registry:5000/ml/nlu-ci:0.2.0", "ghcr.io/acme/nlu-ci@sha256:" + "a" * 64, None])
def test_make_deploy_sets_every_nlu_ci_image_of_any_overlay(image):
    """IMAGE= reaches every container and initContainer running nlu-ci (CronJobs and both serving
    Deployments); without IMAGE= the overlay's own images: entry is what deploys."""
    for overlay in TREES:
        docs = deploy_manifests(overlay, image)
        images = nlu_ci_images(docs)
        assert len(find(docs, "CronJob")) >= 1 and len(images) >= len(find(docs, "CronJob")), overlay
        if overlay == "k8s/overlays/prod":
            assert {"Deployment/nlu-ci-model-server/model-server", "Deployment/rasa-nlu/rasa-nlu"} <= set(images)
        want = image or f"registry.example.com/ml/nlu-ci:{version()}"
        assert set(images.values()) == {want}, (overlay, images)
        others = {k: v for k, v in container_images(docs).items() if k not in images}
        assert others == {k: v for k, v in container_images(render(overlay)).items() if k not in images}


def test_make_deploy_matches_whatever_name_the_overlay_gives_its_image():
    where = ROOT / "var" / "test-deploy-overlay"
    where.mkdir(parents=True, exist_ok=True)
    (where / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../k8s/overlays/prod]\n"
        "images:\n  - name: registry.example.com/ml/nlu-ci\n    newName: harbor.acme.test/team/nlu\n"
        '    digest: "sha256:' + "b" * 64 + '"\n')
    try:
        assert set(nlu_ci_images(deploy_manifests("var/test-deploy-overlay", None)).values()) == {
            "harbor.acme.test/team/nlu@sha256:" + "b" * 64}
        assert set(nlu_ci_images(deploy_manifests("var/test-deploy-overlay", "r.test/x/nlu-ci:7")).values()) == {
            "r.test/x/nlu-ci:7"}
    finally:
        shutil.rmtree(where)


# ---------------------------------------------------------------------------- issue: production on real clusters

def version() -> str:
    return next(line.split('"')[1] for line in (ROOT / "pyproject.toml").read_text().splitlines()
                if line.startswith("version = "))


@pytest.mark.parametrize("tree", TREES)
def test_every_tree_sets_the_image_through_an_images_entry(tree):
    for name, image in nlu_ci_images(render(tree)).items():  # CronJobs and serving Deployments
        # a registry host, never a bare name that means docker.io/library/nlu-ci
        assert image == f"registry.example.com/ml/nlu-ci:{version()}", (tree, name, image)
    images = yaml.safe_load((ROOT / tree / "kustomization.yaml").read_text())["images"]
    assert images == [{"name": "nlu-ci", "newName": "registry.example.com/ml/nlu-ci", "newTag": version()}]
    assert pod_spec(yaml.safe_load((K8S / "base" / "job" / "cronjob.yaml").read_text()))["containers"][0][
        "image"] == "nlu-ci"  # the name the images: entries match


def test_suspend_is_left_to_kubectl_patch():
    """`suspend` is not in the manifest: a `kubectl patch ... suspend: true` survives the next apply."""
    for tree in TREES:
        for job in find(render(tree), "CronJob"):
            assert "suspend" not in job["spec"], tree


def release_labelled(docs) -> dict[str, str]:
    return {d["kind"]: d["metadata"]["labels"].get("release") for d in docs if d["apiVersion"].startswith(CRD_GROUPS)}


def test_servicemonitor_and_rules_carry_the_release_label_and_one_line_changes_it():
    assert release_labelled(render("k8s/overlays/prod")) == {"PrometheusRule": "kube-prometheus-stack",
                                                             "ServiceMonitor": "kube-prometheus-stack",
                                                             "PodMonitor": "kube-prometheus-stack"}
    # the documented one-line setting (overlays/prod), with another release name, in an overlay of prod
    prod = (ROOT / "k8s" / "overlays" / "prod" / "kustomization.yaml").read_text()
    (line,) = [x for x in prod.splitlines() if '"/metadata/labels/release"' in x]
    where = ROOT / "var" / "test-release-label"
    where.mkdir(parents=True, exist_ok=True)
    (where / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../k8s/overlays/prod]\n"
        "patches:\n  - target: {group: monitoring.coreos.com}\n"
        + line.replace("kube-prometheus-stack", "monitoring") + "\n")
    try:
        docs = render("var/test-release-label")
    finally:
        shutil.rmtree(where)
    assert release_labelled(docs) == {"PrometheusRule": "monitoring", "ServiceMonitor": "monitoring",
                                      "PodMonitor": "monitoring"}


def test_memory_request_covers_the_benchmarked_peak():
    """The request is `make bench-memory`'s peak at 100k (docs/bench/memory.json, the latest measured code:
    the whole process tree's PSS, the job and its training children) plus 20%."""
    after = json.loads((ROOT / "docs" / "bench" / "memory.json").read_text())["after"]
    peaks = [float(r.get("peak_pss_max_mb") or r["peak_pss_mb"]) for r in after["runs"]
             if r.get("peak_pss_mb") and r["train_examples"] == 100_000]   # the largest of the bench's runs
    assert peaks, "docs/bench/memory.json has no peak memory at 100,000 examples"
    peak_mib = max(peaks)
    res = pod_spec(cronjob())["containers"][0]["resources"]

    def mib(q: str) -> float:
        units = {"Mi": 1, "Gi": 1024}
        return float(q[:-2]) * units[q[-2:]]

    assert mib(res["requests"]["memory"]) >= 1.2 * peak_mib  # measured peak at 100k examples + 20%
    assert mib(res["requests"]["memory"]) <= 1.5 * peak_mib  # and not still sized for an older, larger peak
    assert mib(res["limits"]["memory"]) >= 2 * mib(res["requests"]["memory"])


@pytest.mark.parametrize("tree", TREES)
def test_runs_at_once_share_a_node_so_the_rwo_volume_never_blocks(tree):
    """Required self-matching podAffinity on the hostname: a second run lands where the first one has the
    ReadWriteOnce volume attached (and ends `locked`), never on another node waiting on Multi-Attach."""
    docs = render(tree)
    (pvc,) = [p for p in find(docs, "PersistentVolumeClaim") if p["metadata"]["name"] == "nlu-ci-models"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    for job in find(docs, "CronJob"):
        spec = pod_spec(job)
        terms = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert all(t["topologyKey"] == "kubernetes.io/hostname" for t in terms)
        own = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        mine = [t for t in terms if t["labelSelector"]["matchLabels"].items() <= own.items()]
        assert len(mine) == 1, "one term the first pod matches itself (serving/same-node may add the model server's)"
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims == ["nlu-ci-models"]


def test_prod_pushgateway_keeps_its_series_on_a_volume():
    docs = render("k8s/overlays/prod")
    volumes = pod_spec(one(docs, "Deployment", "pushgateway"))["volumes"]
    (data,) = [v for v in volumes if v["name"] == "data"]
    one(docs, "PersistentVolumeClaim", data["persistentVolumeClaim"]["claimName"])
    args = pod_spec(one(docs, "Deployment", "pushgateway"))["containers"][0]["args"]
    assert "--persistence.file=/data/metrics" in args
    # dev keeps the emptyDir
    dev = pod_spec(one(render("k8s/overlays/dev"), "Deployment", "pushgateway"))["volumes"]
    assert "emptyDir" in dev[0]


def test_egress_policy_allows_what_the_job_talks_to_and_nothing_else():
    docs = render("k8s/overlays/prod")
    policy = one(docs, "NetworkPolicy", "nlu-ci-egress")
    assert policy["spec"]["policyTypes"] == ["Egress"]
    job_labels = cronjob("k8s/overlays/prod")["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= job_labels.items()
    ports = {(p["port"], p.get("protocol", "TCP")) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    settings = settings_data(docs)
    gateway_port = int(settings["PUSHGATEWAY_URL"].rsplit(":", 1)[1])
    platform_port = int(settings["RASA_PLATFORM_HOST"].rsplit(":", 1)[1])
    assert ports == {(53, "UDP"), (53, "TCP"), (gateway_port, "TCP"), (platform_port, "TCP"), (443, "TCP"),
                     (6443, "TCP")}
    gateway_rule = [r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == gateway_port][0]
    gateway = one(docs, "Deployment", "pushgateway")
    assert gateway_rule["to"][0]["podSelector"]["matchLabels"].items() <= \
        gateway["spec"]["template"]["metadata"]["labels"].items()


def test_dev_and_prod_dashboards_have_different_uids():
    def uid(tree):
        cm = one(render(tree), "ConfigMap", "nlu-ci-grafana-dashboard")
        return json.loads(cm["data"]["nlu-ci-dashboard.json"])["uid"]

    assert uid("k8s/overlays/prod") == "nlu-ci" and uid("k8s/overlays/dev") == "nlu-ci-dev"


def test_multi_project_one_cronjob_per_project_with_its_own_lease():
    docs = render("k8s/overlays/multi-project")
    jobs = find(docs, "CronJob")
    assert len(jobs) >= 2
    projects, leases = [], []
    for job in jobs:
        (container,) = pod_spec(job)["containers"]
        env = env_of(container)
        projects.append(env["NLU_CI_PROJECT"]["value"])
        leases.append(env["NLU_CI_LEASE_NAME"]["value"])
        assert job["metadata"]["name"] == f"nlu-ci-{projects[-1]}" == leases[-1]
        # shared: one settings ConfigMap, one config, one store, one Secret, all of which exist
        one(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
        for vol in pod_spec(job)["volumes"]:
            if "configMap" in vol:
                one(docs, "ConfigMap", vol["configMap"]["name"])
            if "persistentVolumeClaim" in vol:
                one(docs, "PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"])
    assert len(set(projects)) == len(projects) and len(set(leases)) == len(leases)
    names = [r.get("resourceNames") for r in rules_for(docs) if "leases" in r["resources"] and "update" in r["verbs"]]
    assert names == [leases] or sorted(names[0]) == sorted(leases)


def test_failed_run_alert_waits_out_the_jobs_retries():
    """NluCiLastRunFailed pages only once the Job can no longer retry (its `for` >= activeDeadlineSeconds)."""
    rules = {r["alert"]: r for r in yaml.safe_load((ROOT / "monitoring" / "alerts.rules.yml").read_text())
             ["groups"][0]["rules"]}
    hours = int(rules["NluCiLastRunFailed"]["for"].rstrip("h"))
    assert hours * 3600 >= cronjob()["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
