"""k8s/components/git-data (docs/git-data.md): rendered into an overlay of the base, with and without the egress
component; the rendered settings are then read by nlu-ci itself, which must pick the git source they describe."""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

from nlu_ci import settings as settings_mod
from nlu_ci.registry import backends, local
from nlu_ci.settings import OPTIONS

from .manifests import K8S, find, one, pod_spec, render

K8S_VERSION = kv.latest_version()


def overlay(tmp_path: Path, *components: str) -> tuple[dict, ...]:
    k8s = os.path.relpath(K8S, tmp_path)
    listed = ", ".join(f"{k8s}/components/{c}" for c in components)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: nlu-ci\n"
        f"resources: [{k8s}/base, {k8s}/base/job]\ncomponents: [{listed}]\n")
    return render(str(tmp_path))


def job_parts(docs) -> tuple[dict, dict, dict, dict]:
    spec = pod_spec(one(docs, "CronJob", "nlu-ci"))
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    data = one(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
    return env, mounts, volumes, data


def volume_at(path: str, mounts: dict, volumes: dict) -> dict:
    parent = max((p for p in mounts if path == p or path.startswith(p.rstrip("/") + "/")), key=len)
    return volumes[mounts[parent]]


def test_the_component_wires_url_ref_secret_file_and_empty_dir(tmp_path):
    docs = overlay(tmp_path, "egress-networkpolicy", "git-data")
    env, mounts, volumes, data = job_parts(docs)
    assert data["NLU_CI_DATA_GIT_URL"].startswith("https://") and data["NLU_CI_DATA_GIT_REF"] == "main"
    assert data["RASA_PLATFORM_HOST"] == "" and data["NLU_CI_DATA"] == "data"
    assert "RASA_API_TOKEN_FILE" not in env, "no platform token file to read"
    assert volumes["secrets"]["secret"]["optional"] is True, "nlu-ci-secrets is needed only for Slack now"
    credentials = volume_at(env["NLU_CI_DATA_GIT_TOKEN_FILE"], mounts, volumes)
    assert credentials["secret"] == {"secretName": "nlu-ci-git", "defaultMode": 0o400}
    clone = volume_at(data["NLU_CI_DATA_GIT_DIR"], mounts, volumes)
    assert clone["emptyDir"]["sizeLimit"]
    known = {o.env for o in OPTIONS} | {o.secret_file_env for o in OPTIONS if o.secret_file_env} | {"HOME"}
    assert set(env) <= known and set(data) <= known, sorted((set(env) | set(data)) - known)
    egress = one(docs, "NetworkPolicy", "nlu-ci-egress")["spec"]["egress"]
    assert any({"port": 22, "protocol": "TCP"} in rule.get("ports", []) for rule in egress)
    kv.validate(one(docs, "CronJob", "nlu-ci"), K8S_VERSION, strict=True)
    kv.validate(one(docs, "NetworkPolicy", "nlu-ci-egress"), K8S_VERSION, strict=True)


def test_without_the_egress_component_no_egress_policy_appears(tmp_path):
    docs = overlay(tmp_path, "git-data")
    assert not find(docs, "NetworkPolicy", "nlu-ci-egress")
    assert job_parts(docs)[0]["NLU_CI_DATA_GIT_TOKEN_FILE"]


def test_nlu_ci_reads_the_rendered_settings_as_a_git_source(tmp_path):
    """The environment a kubelet would give the container (ConfigMap + env), the Secret's file where it points."""
    (tmp_path / "tree").mkdir()
    docs = overlay(tmp_path / "tree", "git-data")
    env, _, _, data = job_parts(docs)
    token = tmp_path / "token"
    token.write_text("glpat-FromTheSecretFile42\n")
    environ = {**data, **{k: v for k, v in env.items() if v is not None},
               "NLU_CI_DATA_GIT_TOKEN_FILE": str(token), "NLU_CI_MODELS_DIR": str(tmp_path / "models")}
    registry = backends.build(settings_mod.from_env(environ))
    assert isinstance(registry, local.LocalRegistry), "RASA_PLATFORM_HOST='' means no platform"
    git = registry.git
    assert (git.url, git.ref, git.path, git.kind) == (data["NLU_CI_DATA_GIT_URL"], "main", "data", "http")
    assert git.token == "glpat-FromTheSecretFile42" and str(git.folder) == data["NLU_CI_DATA_GIT_DIR"]


def test_the_component_is_documented():
    readme = (K8S.parent / "README.md").read_text()
    assert "components/git-data" in readme and "docs/git-data.md" in readme
    assert "components/git-data" in (K8S.parent / "docs" / "git-data.md").read_text()


def test_the_documented_way_to_set_the_repository_reaches_the_settings(tmp_path):
    """docs/git-data.md's recipe: the repository's values in a Component listed after git-data. The overlay's own
    configMapGenerator would lose to git-data's placeholders (kustomize runs components after it): the control."""
    doc = (K8S.parent / "docs" / "git-data.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc.split("## Kubernetes: `k8s/components/git-data`")[1], re.S)
    overlay_doc, component_doc = (yaml.safe_load(b) for b in blocks[:2])
    k8s = os.path.relpath(K8S, tmp_path)
    (tmp_path / "repository").mkdir()
    (tmp_path / "repository" / "kustomization.yaml").write_text(yaml.safe_dump(component_doc))
    literals = dict(x.split("=", 1) for x in component_doc["configMapGenerator"][0]["literals"])
    literals["NLU_CI_DATA_GIT_URL"] = "https://git.team.example/assistant.git"
    component_doc["configMapGenerator"][0]["literals"] = [f"{k}={v}" for k, v in literals.items()]
    (tmp_path / "repository" / "kustomization.yaml").write_text(yaml.safe_dump(component_doc))
    assert overlay_doc["components"][-1] == "repository"
    components = [f"{k8s}/components/{c.rsplit('/', 1)[1]}" for c in overlay_doc["components"][:-1]] + ["repository"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": "nlu-ci",
        "resources": [f"{k8s}/base", f"{k8s}/base/job"], "components": components}))
    data = job_parts(render(str(tmp_path)))[3]
    assert data["NLU_CI_DATA_GIT_URL"] == "https://git.team.example/assistant.git"
    # the control: the same values in the own configMapGenerator of an overlay of prod do not reach the job
    control = tmp_path / "control"  # another folder: render() caches by path
    control.mkdir()
    k8s = os.path.relpath(K8S, control)
    (control / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"{k8s}/overlays/prod"], "components": [f"{k8s}/components/git-data"],
        "configMapGenerator": component_doc["configMapGenerator"]}))
    data = job_parts(render(str(control)))[3]
    assert data["NLU_CI_DATA_GIT_URL"] != "https://git.team.example/assistant.git"
