"""k8s/components/parallel-search: the cv config search as an Indexed Job. Rendered with kustomize and validated
strictly; then a real `nlu-ci run --cv-folds` in "a cluster" (the fake API server enforcing the rendered Role,
with its Indexed Job controller: support/kube_jobs.py) creates the Job, each index's pod runs the container's
args and env as the rendered template says (with the worktree's python instead of the image: the image build is
tests/k8s/test_image_build.py's), reading the data from git, and the run reads the termination messages back,
trains the winner and promotes it under the Lease as always."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import utils as kv

from core.test_cv_search import KEYWORD, LINEAR, small_hwu64
from support.data import cli_env, run_cli
from support.git_server import Repo
from support.kube_fake import FakeApiServer

from .conftest import NS
from .manifests import find, one, pod_spec, supported_versions
from .test_git_data_component import overlay

JOB = "nlu-ci-29120000"


def rendered(tmp_path: Path):
    docs = overlay(tmp_path, "git-data", "parallel-search")
    cron = one(docs, "CronJob", "nlu-ci")
    container = pod_spec(cron)["containers"][0]
    settings = one(docs, "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])["data"]
    (cm,) = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("nlu-ci-cv-job")]
    return docs, cron, settings, yaml.safe_load(cm["data"]["cv-job.yaml"])


def test_the_component_renders_validates_and_wires_template_role_and_mount(tmp_path):
    docs, cron, settings, template = rendered(tmp_path)
    for version in supported_versions():
        for doc in [*docs, template]:
            kv.validate(doc, version, strict=True)
    rules = one(docs, "Role", "nlu-ci")["rules"]
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]} in rules
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]} in rules
    spec = pod_spec(cron)
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    where = Path(settings["NLU_CI_CV_JOB_TEMPLATE"])
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[str(where.parent)])
    assert volume["configMap"]["name"].startswith("nlu-ci-cv-job") and int(settings["NLU_CI_CV_FOLDS"]) >= 2
    job = template["spec"]
    assert job["completionMode"] == "Indexed" and job["backoffLimitPerIndex"] >= 0
    pod = job["template"]["spec"]
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"]), "fold pods never mount the RWO store"
    assert "affinity" not in pod and "nlu-ci.rasa.com/models-volume" not in job["template"]["metadata"]["labels"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert c["args"] == ["cv-fold"] and env["NLU_CI_CV_RESULT_FILE"] == c["terminationMessagePath"]


def test_the_job_the_run_makes_validates_and_takes_the_pods_image_and_generated_names(tmp_path):
    from nlu_ci.job.search import indexed
    from nlu_ci.settings import from_env

    docs, cron, settings, template = rendered(tmp_path)
    own = {"spec": pod_spec(cron)}
    own["spec"]["containers"][0]["image"] = "registry.example.com/ml/nlu-ci@sha256:" + "a" * 64
    s = from_env({"NLU_CI_CV_FOLDS": "5", "NLU_CI_CONFIG": "/etc/nlu-ci/a.yml,/etc/nlu-ci/b.yml,/etc/nlu-ci/c.yml"})
    body = indexed.job_body(template, s, 3, "nlu-ci-cv-0123456789", own,
                            {"apiVersion": "batch/v1", "kind": "Job", "name": JOB, "uid": "u", "blockOwnerDeletion": False})
    for version in supported_versions():
        kv.validate(body, version, strict=True)
    assert body["spec"]["completions"] == 15 and body["spec"]["parallelism"] == 4
    pod = body["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == own["spec"]["containers"][0]["image"]
    assert pod["containers"][0]["envFrom"] == own["spec"]["containers"][0]["envFrom"]  # nlu-ci-settings-<hash>
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    assert config == next(v for v in own["spec"]["volumes"] if v["name"] == "config")
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])


def kubelet(settings: dict, where: Path, fail_index: int | None = None, first=None):
    """Runs a fold pod's container as the manifest says: envFrom (the settings ConfigMap), env (valueFrom the
    pod's annotations), args after the image's entrypoint `nlu-ci` (here: the worktree's python -m nlu_ci.cli);
    the mounts it writes to are folders of ``where``; the termination message is the file's content."""
    once = threading.Lock()

    def run(pod: dict, container: dict) -> tuple[int, bytes]:
        nonlocal first
        with once:
            if first is not None:
                first, todo = None, first
                todo()  # e.g. a push to the data repository while the Job runs
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        if fail_index is not None and int(index) == fail_index:
            return 1, b""
        root = where / pod["metadata"]["name"]
        root.mkdir(parents=True)
        paths = {container["terminationMessagePath"]: root / "termination-log", "/var/lib/nlu-ci/git": root / "git"}
        (root / "tmp").mkdir()
        env = {k: v for k, v in cli_env(where / "no-store").items() if not k.startswith("NLU_CI_")}
        env.update(settings)
        for e in container.get("env") or []:
            if "valueFrom" in e:
                field = e["valueFrom"]["fieldRef"]["fieldPath"]
                key = field.split("['", 1)[1].rstrip("']")
                env[e["name"]] = pod["metadata"]["annotations"][key]
            elif e["name"] == "NLU_CI_DATA_GIT_TOKEN_FILE":
                continue  # the optional Secret is absent here (a file:// repository needs no token)
            else:
                env[e["name"]] = e["value"]
        env = {k: next((str(p) + v[len(m):] for m, p in paths.items() if v.startswith(m)), v) for k, v in env.items()}
        env["HOME"] = str(root / "tmp")  # the emptyDir at /tmp
        proc = subprocess.run([sys.executable, "-m", "nlu_ci.cli", *container["args"]], env=env, capture_output=True,
                              timeout=300)
        (root / "log").write_bytes(proc.stdout + proc.stderr)
        message = (root / "termination-log").read_bytes() if (root / "termination-log").exists() else b""
        return proc.returncode, message
    return run


@pytest.fixture
def cluster(tmp_path, apiserver, kubeconfig, monkeypatch):
    (tmp_path / "tree").mkdir()
    docs, cron, settings, template = rendered(tmp_path / "tree")
    (tmp_path / "cv-job.yaml").write_text(yaml.safe_dump(template))
    repo = Repo(tmp_path / "git")
    data = small_hwu64(tmp_path / "small.json", intents=5, per_intent=12)
    repo.commit({"data/nlu.json": data.read_text()}, "data")
    for name, text in (("keyword.yml", KEYWORD), ("linear.yml", LINEAR)):
        (tmp_path / name).write_text(text)
    configs = f"{tmp_path / 'keyword.yml'},{tmp_path / 'linear.yml'}"
    source = dict(NLU_CI_DATA_GIT_URL=f"file://{repo.bare}", NLU_CI_DATA_GIT_REF="main", NLU_CI_DATA="data",
                  NLU_CI_CONFIG=configs, NLU_CI_CV_FOLDS="2", RASA_PLATFORM_HOST="")
    settings = {**settings, **source, "NLU_CI_KUBERNETES": "off", "NLU_CI_LOG_FORMAT": "text"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{JOB}-x7k2p", "namespace": NS, "uid": "p"},
           "spec": pod_spec(cron)}
    pod["spec"]["containers"][0]["image"] = "registry.example.com/ml/nlu-ci:0.1.0"  # what `images:` sets
    apiserver.put("pods", pod)
    apiserver.allow(one(docs, "Role", "nlu-ci")["rules"])
    env = cli_env(tmp_path / "models", NLU_CI_KUBERNETES="on", KUBECONFIG=str(kubeconfig), JOB_NAME=JOB,
                  JOB_UID="job-uid-1", POD_NAME=f"{JOB}-x7k2p", POD_NAMESPACE=NS, POD_UID="p",
                  NLU_CI_CV_JOB_TEMPLATE=str(tmp_path / "cv-job.yaml"), **source)
    return settings, env, repo


def test_a_run_fans_the_folds_out_as_an_indexed_job_and_promotes_the_winner(cluster, apiserver, monkeypatch, tmp_path):
    settings, env, _repo = cluster
    monkeypatch.setattr(FakeApiServer, "run_container", staticmethod(kubelet(settings, tmp_path / "pods")))
    run = run_cli(["run", "--json"], env, timeout=600)
    assert run.code == 0 and run.json["outcome"] == "promoted", run.output
    cv = run.json["cv_search"]
    assert cv["runner"] == "kubernetes-job" and cv["tasks"] == 4 and cv["chosen"].endswith("linear.yml")
    (job,) = apiserver.list("jobs", NS)
    assert job["metadata"]["name"] == cv["job"] and job["status"]["completedIndexes"] == "0-3"
    assert job["metadata"]["ownerReferences"][0]["name"] == JOB
    pods = [p for p in apiserver.list("pods", NS) if p["metadata"]["name"] != f"{JOB}-x7k2p"]
    assert len(pods) == 4 and all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(p["spec"]["containers"][0]["image"] == "registry.example.com/ml/nlu-ci:0.1.0" for p in pods)
    assert {("create", "batch", "jobs"), ("get", "batch", "jobs"), ("list", "", "pods")} <= apiserver.authorised
    assert [r for r in apiserver.requests if r["status"] in (401, 403, 422)] == []
    lease = apiserver.get("leases", NS, "nlu-ci")
    assert lease is not None and "holderIdentity" not in lease["spec"]  # taken for the run, released after
    # the same choice and the same fold scores as the search in forked processes on one pod
    local_env = {**env, "NLU_CI_KUBERNETES": "off", "NLU_CI_CV_JOB_TEMPLATE": "",
                 "NLU_CI_MODELS_DIR": str(tmp_path / "local")}
    local = run_cli(["run", "--json", "--dry-run"], local_env, timeout=600)
    assert local.code == 0, local.output
    assert local.json["cv_search"]["scores_digest"] == cv["scores_digest"]
    assert local.json["cv_search"]["chosen"] == cv["chosen"]
    messages = [json.loads(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]) for p in pods]
    assert sorted(m["index"] for m in messages) == [0, 1, 2, 3]


def test_an_index_failing_past_its_backoff_limit_fails_the_run_and_promotes_nothing(cluster, apiserver, monkeypatch,
                                                                                    tmp_path):
    settings, env, _repo = cluster
    monkeypatch.setattr(FakeApiServer, "run_container", staticmethod(kubelet(settings, tmp_path / "pods", 1)))
    run = run_cli(["run", "--json"], env, timeout=600)
    assert run.code == 1 and run.json["outcome"] == "failed", run.output
    assert "MaxFailedIndexesExceeded" in run.json["error"] and "failed indexes 1" in run.json["error"]
    index1 = [p for p in apiserver.list("pods", NS) if p["metadata"].get("annotations", {}).get(
        "batch.kubernetes.io/job-completion-index") == "1"]
    assert len(index1) == 2  # backoffLimitPerIndex: 1 = one retry of that index alone
    assert not (tmp_path / "models" / "default" / "ACTIVE").exists()


def test_fold_pods_that_read_other_data_fail_the_run(cluster, apiserver, monkeypatch, tmp_path):
    settings, env, repo = cluster
    more = small_hwu64(tmp_path / "more.json", intents=5, per_intent=14)  # pushed after the run fetched its data
    monkeypatch.setattr(FakeApiServer, "run_container", staticmethod(kubelet(
        settings, tmp_path / "pods", first=lambda: repo.commit({"data/nlu.json": more.read_text()}, "more data"))))
    run = run_cli(["run", "--json"], env, timeout=600)
    assert run.code == 1 and run.json["outcome"] == "failed", run.output
    assert "trained on other data than this run" in run.json["error"]
    assert not (tmp_path / "models" / "default" / "ACTIVE").exists()
