"""The cv config search fanned out as an Indexed Job with every pod in the built image (issue 23).

tests/k8s/test_parallel_search.py runs the fold pods' command with the worktree's python; here nothing runs
outside the image. A team's tree as docs say to write it: k8s/base + base/job, components git-data then
parallel-search, then the team's own Component (the repository's URL, two candidate configs added to the
nlu-ci-config ConfigMap and named in NLU_CI_CONFIG, 2 folds), rendered by `kubectl kustomize`. The CronJob's pod
runs in the image through the kubelet harness (tests/support/kubelet.py) with in-cluster access to the fake API
server (TLS, the service-account token the harness mounts, RBAC by the rendered Role); the Job the run creates is
run by that server's Indexed Job controller (tests/support/kube_jobs.py), each index's pod again by the kubelet
harness in the image, as the Job's pod template says (uid 10001, read-only root, data cloned from the team's git
server over HTTP with the token of the nlu-ci-git Secret, the result written to its terminationMessagePath).
The run reads the termination messages back through the API, trains the winner and promotes it onto the
claim."""
from __future__ import annotations

import json
import os

import pytest

from core.test_cv_search import KEYWORD, LINEAR, small_hwu64
from support.data import ROOT, cli_env, run_cli
from support.git_server import GitHttp, Repo
from support.image import IMAGE
from support.kube_fake import FakeApiServer
from support.kubelet import Kubelet

from .conftest import NS

GIT_HOST = "git.team.example:3000"
TOKEN = "cv-search-token-7f3a9c"
SECRETS = [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "nlu-ci-git", "namespace": NS},
            "stringData": {"token": TOKEN}}]
TREE = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: nlu-ci
resources: [{k8s}/base, {k8s}/base/job]
components: [{k8s}/components/git-data, {k8s}/components/parallel-search, team]
"""
TEAM = f"""apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
configMapGenerator:
  - name: nlu-ci-config
    behavior: merge
    files: [keyword.yml, linear.yml]
  - name: nlu-ci-settings
    behavior: merge
    literals:
      - NLU_CI_DATA_GIT_URL=http://{GIT_HOST}/assistant.git
      - NLU_CI_CONFIG=/etc/nlu-ci/keyword.yml,/etc/nlu-ci/linear.yml
      - NLU_CI_CV_FOLDS=2
"""


@pytest.fixture
def world(nlu_ci_image, tmp_path, monkeypatch):
    buildah, _ = nlu_ci_image
    tree = tmp_path / "tree"
    (tree / "team").mkdir(parents=True)
    (tree / "kustomization.yaml").write_text(TREE.format(k8s=os.path.relpath(ROOT / "k8s", tree)))
    (tree / "team" / "kustomization.yaml").write_text(TEAM)
    (tree / "team" / "keyword.yml").write_text(KEYWORD)
    (tree / "team" / "linear.yml").write_text(LINEAR)
    (tmp_path / "git").mkdir()
    repo = Repo(tmp_path / "git")
    data = small_hwu64(tmp_path / "small.json", intents=5, per_intent=12)
    repo.commit({"data/nlu.json": data.read_text()}, "data")
    apiserver = FakeApiServer(tls_dir=tmp_path / "tls").start()
    with GitHttp(tmp_path / "git", TOKEN) as git:
        kubelet = Kubelet.from_tree(tree, buildah=buildah, image=IMAGE, workdir=tmp_path, secrets=SECRETS,
                                    external={GIT_HOST: f"127.0.0.1:{git.port}"}, api=apiserver)
        apiserver.allow(kubelet.find("Role", "nlu-ci")[0]["rules"])
        monkeypatch.setattr(FakeApiServer, "run_container", staticmethod(lambda pod, _c: kubelet.run_pod(pod)))
        try:
            yield kubelet, apiserver, repo
        finally:
            kubelet.close()
            apiserver.stop()


def test_the_cronjob_fans_the_folds_out_to_pods_of_the_image_and_promotes_the_winner(world):
    kubelet, apiserver, repo = world
    result = kubelet.run_job("nlu-ci", job_name="nlu-ci-29120001", timeout=900)
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert TOKEN not in result.stdout + result.stderr, "the git token was printed"
    store = kubelet.claims["nlu-ci-models"] / "default"
    runs = [json.loads(line) for line in (store / "history.jsonl").read_text().splitlines()]
    run = [r for r in runs if r.get("event") == "run"][-1]
    assert run["outcome"] == "promoted", run
    assert (store / "ACTIVE").is_file()
    cv = json.loads((store / "last_report.json").read_text())["cv_search"]
    assert cv["runner"] == "kubernetes-job" and cv["tasks"] == 4, cv
    assert cv["chosen"] == "/etc/nlu-ci/linear.yml"
    (job,) = apiserver.list("jobs", NS)
    assert job["metadata"]["name"] == cv["job"]
    assert job["spec"]["completions"] == 4 and job["status"]["completedIndexes"] == "0-3", job["status"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "nlu-ci-29120001"
    folds = [p for p in apiserver.list("pods", NS) if p["metadata"]["labels"].get("job-name") == job["metadata"]["name"]]
    assert len(folds) == 4 and all(p["status"]["phase"] == "Succeeded" for p in folds)
    messages = [json.loads(p["status"]["containerStatuses"][0]["state"]["terminated"]["message"]) for p in folds]
    assert sorted(m["index"] for m in messages) == [0, 1, 2, 3]
    assert len({m["data_key"] for m in messages}) == 1
    assert {("create", "batch", "jobs"), ("get", "batch", "jobs"), ("list", "", "pods"), ("get", "", "pods")} <= \
        apiserver.authorised
    assert [r for r in apiserver.requests if r["status"] in (401, 403, 422)] == []
    lease = apiserver.get("leases", NS, "nlu-ci")
    assert lease is not None and "holderIdentity" not in lease["spec"]  # taken for the run, released after
    # the same fold scores as the search in forked processes on one pod, run here by the worktree's python
    etc = kubelet.workdir / "etc"
    etc.mkdir()
    (etc / "keyword.yml").write_text(KEYWORD)
    (etc / "linear.yml").write_text(LINEAR)
    local = run_cli(["run", "--json", "--dry-run"], cli_env(
        kubelet.workdir / "local", NLU_CI_DATA_GIT_URL=f"file://{repo.bare}", NLU_CI_DATA_GIT_REF="main",
        NLU_CI_DATA="data", RASA_PLATFORM_HOST="", NLU_CI_CV_FOLDS="2", NLU_CI_KUBERNETES="off",
        NLU_CI_CONFIG=f"{etc / 'keyword.yml'},{etc / 'linear.yml'}"), timeout=600)
    assert local.code == 0, local.output
    assert local.json["cv_search"]["runner"] != "kubernetes-job"
    assert local.json["cv_search"]["scores_digest"] == cv["scores_digest"]
    assert local.json["cv_search"]["chosen_index"] == cv["chosen_index"]
