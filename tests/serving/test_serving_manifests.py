"""``k8s/components/serving``: rendered with the base by ``kubectl kustomize``, validated strictly, and holding
what the README promises (PVC read-only, restricted PSS, probes on the real routes, env names that are real
options, NetworkPolicies, the same-node affinity for ReadWriteOnce)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from k8s.manifests import K8S, need_kubectl, offline_env, one, pod_spec, restricted_violations  # noqa: E402
from nlu_ci.settings import OPTIONS  # noqa: E402


def render(tmp_path: Path, *components: str) -> list[dict]:
    rel = os.path.relpath(K8S, tmp_path)
    comps = ", ".join(f"{rel}/components/{c}" for c in components)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: nlu-ci\n"
        f"resources: [{rel}/base, {rel}/base/job]\ncomponents: [{comps}]\n")
    proc = subprocess.run([need_kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env=offline_env())
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "rendered.yaml").write_text(proc.stdout)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture
def docs(tmp_path) -> list[dict]:
    return render(tmp_path, "serving")


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_everything_validates_strictly(docs, tmp_path):
    validate = Path(sys.executable).with_name("kubernetes-validate")
    if not validate.exists():
        pytest.skip("kubernetes-validate is not installed (make install)")
    proc = subprocess.run([str(validate), "--strict", "--quiet", str(tmp_path / "rendered.yaml")], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_model_server_mounts_the_pvc_read_only_and_serves_on_all_interfaces(docs):
    spec = pod_spec(one(docs, "Deployment", "nlu-ci-model-server"))
    pvc = next(v for v in spec["volumes"] if "persistentVolumeClaim" in v)
    assert pvc["persistentVolumeClaim"] == {"claimName": "nlu-ci-models", "readOnly": True}
    c = spec["containers"][0]
    assert c["args"] == ["serve-models"]
    assert next(m for m in c["volumeMounts"] if m["name"] == pvc["name"])["readOnly"] is True
    assert env(c)["NLU_CI_HOST"] == "0.0.0.0" and env(c)["NLU_CI_MODELS_DIR"] == "/models"
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    service = one(docs, "Service", "nlu-ci-models")
    assert service["spec"]["ports"][0]["port"] == 8080


def test_rasa_nlu_pulls_from_the_model_server_with_replicas_and_readiness(docs):
    deployment = one(docs, "Deployment", "rasa-nlu")
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    c = pod_spec(deployment)["containers"][0]
    assert c["args"] == ["serve"] and c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert env(c)["NLU_CI_MODEL_URL"] == "http://nlu-ci-models:8080/models/default"
    assert one(docs, "PodDisruptionBudget", "rasa-nlu")["spec"]["minAvailable"] == 1


def test_serving_pods_are_restricted_with_resources(docs):
    for name in ("nlu-ci-model-server", "rasa-nlu"):
        spec = pod_spec(one(docs, "Deployment", name))
        assert restricted_violations(spec) == [], name
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) <= set(c["resources"]["limits"])


def test_every_environment_name_is_a_real_option(docs):
    known = {o.env for o in OPTIONS} | {o.secret_file_env for o in OPTIONS if o.secret_file_env} | {"HOME"}
    for name in ("nlu-ci-model-server", "rasa-nlu"):
        for c in pod_spec(one(docs, "Deployment", name))["containers"]:
            assert set(env(c)) <= known, set(env(c)) - known


def test_network_policies_let_only_rasa_nlu_reach_the_model_server(docs):
    ms = one(docs, "NetworkPolicy", "nlu-ci-model-server")["spec"]
    assert ms["egress"] == [] and set(ms["policyTypes"]) == {"Ingress", "Egress"}
    assert ms["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rasa-nlu"}}}],
                              "ports": [{"port": 8080, "protocol": "TCP"}]}]
    rasa = one(docs, "NetworkPolicy", "rasa-nlu")["spec"]
    assert [r["ports"] for r in rasa["ingress"]] == [[{"port": 5000, "protocol": "TCP"}]]
    # the base policy (no ingress at all for the job's pods) must not select the serving pods
    base = one(docs, "NetworkPolicy", "nlu-ci")["spec"]["podSelector"]["matchLabels"]
    for name in ("nlu-ci-model-server", "rasa-nlu"):
        labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert not base.items() <= labels.items(), name


def test_same_node_component_puts_the_job_next_to_the_model_server(tmp_path):
    docs = render(tmp_path, "serving", "serving/same-node")
    affinity = pod_spec(one(docs, "CronJob", "nlu-ci"))["affinity"]["podAffinity"]
    labels = one(docs, "Deployment", "nlu-ci-model-server")["spec"]["template"]["metadata"]["labels"]
    terms = [t for t in affinity["requiredDuringSchedulingIgnoredDuringExecution"]
             if t["labelSelector"]["matchLabels"].items() <= labels.items()]
    assert len(terms) == 1 and terms[0]["topologyKey"] == "kubernetes.io/hostname"


CLIENT = {"nlu-ci.rasa.com/client": "true"}  # the label README "Serving the active model" documents


def admitted(policy: dict, pod_labels: dict, pod_namespace: str, namespace_labels: dict, port: int) -> bool:
    """NetworkPolicy ingress semantics: rules ORed; in a peer, podSelector alone = the policy's namespace,
    with a namespaceSelector both must match (matchLabels is all these manifests use)."""
    def matches(selector: dict, labels: dict) -> bool:
        return (selector.get("matchLabels") or {}).items() <= labels.items()

    for rule in policy["spec"].get("ingress") or []:
        if rule.get("ports") and port not in [p["port"] for p in rule["ports"]]:
            continue
        for peer in rule.get("from") or [{}]:
            ns_ok = (matches(peer["namespaceSelector"], namespace_labels) if "namespaceSelector" in peer
                     else pod_namespace == policy["metadata"]["namespace"])
            if not peer or (ns_ok and matches(peer.get("podSelector") or {}, pod_labels)):
                return True
    return False


def test_only_pods_labelled_as_clients_reach_the_serving_port(docs):
    policy = one(docs, "NetworkPolicy", "rasa-nlu")
    serving = one(docs, "Deployment", "rasa-nlu")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= serving.items()
    here, labelled_ns, other_ns = {"kubernetes.io/metadata.name": "nlu-ci"}, {**CLIENT}, {}
    assert admitted(policy, {"app": "bot", **CLIENT}, "nlu-ci", here, 5000)
    assert not admitted(policy, {"app": "bot"}, "nlu-ci", here, 5000)  # every other pod: no /train, no DELETE
    assert admitted(policy, {"app": "bot", **CLIENT}, "bots", labelled_ns, 5000)
    assert not admitted(policy, {"app": "bot", **CLIENT}, "bots", other_ns, 5000)  # a pod cannot opt in alone
    assert not admitted(policy, {"app": "bot"}, "bots", labelled_ns, 5000)
    assert not admitted(policy, {"app": "bot", **CLIENT}, "nlu-ci", here, 8080)
    readme = (K8S.parent / "README.md").read_text()
    assert 'nlu-ci.rasa.com/client: "true"' in readme


def test_the_model_server_is_recreated_not_rolled(docs):
    """Its ReadWriteOnce volume cannot attach to a second pod on another node (tests/k8s/test_placement.py)."""
    assert one(docs, "Deployment", "nlu-ci-model-server")["spec"]["strategy"] == {"type": "Recreate"}
