"""A team's day in production (issue 21), through the kubelet harness and the PROD overlay, each step asserted.

The input is what a team applies: k8s/overlays/prod with components/git-data, in a kustomization of the test's own
on top of it (a temp folder; its only edit: the repository's URL in a Component after git-data, as docs/git-data.md
says), rendered by
`kubectl kustomize`; the Secrets a team creates by hand (nlu-ci-git's token, nlu-ci-secrets' Slack key, empty: no
Slack here). What the loopback cannot give is mapped with the harness's ``external`` names: the team's git host
(a real `git http-backend` with token auth, tests/support/git_server.py) and the Service ``pushgateway:9091``
(its Deployment runs the upstream prom/pushgateway image, which cannot run here: a real Pushgateway binary plays
its endpoint). No container command line is written here; the one-off rollback Job is README's recipe
(`kubectl create job --from=cronjob/nlu-ci` with args ["rollback"]); the pull-request check is
examples/ci/github-actions.yml's own script run in the image (tests/support/ci_image.py).

The day: a Rasa 3 project (tests/support/rasa3_project.py, HWU64) in git -> the CronJob's container (uid 10001,
read-only root) clones, trains, promotes A; metrics in the Pushgateway -> the model server and rasa-nlu serve A
-> a commit adds examples and a new intent: the job again promotes B, served within the pull interval + 2 s with
no failed client request -> a branch relabelling half of one intent: the CI check exits 3 naming the relabelled
examples; merged anyway, the nightly run rejects it and B stays -> the merge reverted and a rollback to A: the
next run does not promote B again -> `DELETE /models` and `/train` on the serving port are refused.

The steps share one module-scoped world and run in file order; each asserts the steps it needs finished (``needs``),
not every step before it: the rollback and the refused routes make their own starting point (B active, B's data on
main) when an earlier step did not leave it, so a failure in one step is not hidden behind skips of the others."""
from __future__ import annotations

import base64
import json
import os
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support.ci_image import run_check_job
from support.git_server import GitHttp, Repo, git
from support.image import IMAGE
from support.kubelet import Kubelet
from support.rasa3_project import NEW_INTENT, RELABEL_FROM, RELABEL_TO, day_steps, project_files, relabelled
from support.servers import PUSHGATEWAY_BIN, Pushgateway

from .manifests import ROOT

pytestmark = [pytest.mark.timeout(900),
              pytest.mark.skipif(PUSHGATEWAY_BIN is None, reason="prometheus-pushgateway is not installed")]

TOKEN = "glpat-day-in-production-0123456789"
GIT_HOST = "git.team.example:3000"  # the team's git server, as its overlay names it
PUSHGATEWAY = "pushgateway:9091"  # PUSHGATEWAY_URL of k8s/base/settings.env: the Service of components/pushgateway
SECRETS = [{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "nlu-ci-git", "namespace": "nlu-ci"},
            "stringData": {"token": TOKEN}},
           {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": "nlu-ci-secrets", "namespace": "nlu-ci"},
            "stringData": {"slack-webhook-url": ""}}]
OVERLAY = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [{k8s}/overlays/prod]
components: [{k8s}/components/git-data, repository]
"""
REPOSITORY = """# the team's repository (docs/git-data.md: a Component listed after git-data)
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
configMapGenerator:
  - name: nlu-ci-settings
    behavior: merge
    literals:
      - NLU_CI_DATA_GIT_URL=http://{git_host}/assistant.git
"""
ORDER = ["promote_a", "serve_a", "promote_b", "check", "reject", "rollback", "refuse"]


class Traffic(threading.Thread):
    """A client posting /parse through the rasa-nlu Service, one new connection per request (so both replicas)."""

    def __init__(self, url: str, texts: list[str]):
        super().__init__(daemon=True)
        self.url, self.texts, self.answers, self.failures = url, texts, [], []
        self.stopped = threading.Event()

    def run(self) -> None:
        k = 0
        while not self.stopped.is_set():
            k += 1
            try:
                r = requests.post(f"{self.url}/parse", json={"q": self.texts[k % len(self.texts)]}, timeout=10)
                if r.status_code != 200:
                    self.failures.append((time.time(), r.status_code, r.text[:200]))
                else:
                    self.answers.append((time.time(), r.json()["model"]))
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.failures.append((time.time(), None, repr(exc)[:200]))
            self.stopped.wait(0.2)


@pytest.fixture(scope="module")
def day(nlu_ci_image, tmp_path_factory):
    buildah, _ = nlu_ci_image
    root = tmp_path_factory.mktemp("day")
    steps = day_steps()
    (root / "git").mkdir()
    repo = Repo(root / "git")
    team_config = (ROOT / "nlu_config.yml").read_text()  # the pipeline the ConfigMap carries, for the CI check
    sha_a = repo.commit({**project_files(steps["base"]), "nlu_config.yml": team_config}, "a Rasa 3 assistant")
    overlay = root / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(OVERLAY.format(k8s=os.path.relpath(ROOT / "k8s", overlay)))
    (overlay / "repository").mkdir()
    (overlay / "repository" / "kustomization.yaml").write_text(REPOSITORY.format(git_host=GIT_HOST))
    with GitHttp(root / "git", TOKEN) as server:
        pushgateway = Pushgateway(root / "pushgateway")
        kubelet = Kubelet.from_tree(overlay, buildah=buildah, image=IMAGE, workdir=root, secrets=SECRETS,
                                    external={GIT_HOST: f"127.0.0.1:{server.port}",
                                              PUSHGATEWAY: f"127.0.0.1:{pushgateway.port}"})
        world = {"kubelet": kubelet, "repo": repo, "git": server, "pushgateway": pushgateway, "steps": steps,
                 "sha": {"a": sha_a}, "done": [], "root": root, "buildah": buildah, "deployments": []}
        try:
            yield world
        finally:
            if world.get("traffic"):
                world["traffic"].stopped.set()
            for handle in world["deployments"]:
                handle.stop()
            kubelet.close()
            pushgateway.stop()


def needs(day, *steps: str) -> None:
    """Assert that the steps this one builds on finished (each test marks itself done when it passes)."""
    missing = [s for s in steps if s not in day["done"]]
    assert not missing, f"needs {missing} (done: {day['done']})"


def relabel_branch(day) -> set[str]:
    """The branch `relabel` (half of RELABEL_FROM labelled RELABEL_TO), pushed once; the relabelled texts."""
    if "relabelled" not in day:
        noisy, texts = relabelled(day["steps"]["growth"])
        repo = day["repo"]
        day["sha"]["noisy"] = repo.commit({"data/nlu.yml": project_files(noisy)["data/nlu.yml"]},
                                          f"merge {RELABEL_FROM} into {RELABEL_TO}", branch="relabel")
        git("checkout", "--quiet", "main", cwd=repo.work)
        repo.branch = "main"
        day["relabelled"] = texts
    return day["relabelled"]


def store(day) -> Path:
    return day["kubelet"].claims["nlu-ci-models"] / "default"


def active(day) -> str:
    return (store(day) / "ACTIVE").read_text().strip()


def last_run(day) -> dict:
    runs = [json.loads(line) for line in (store(day) / "history.jsonl").read_text().splitlines()]
    return [r for r in runs if r.get("event") == "run"][-1]


def nightly(day, name: str):
    started = time.monotonic()
    result = day["kubelet"].run_job("nlu-ci", job_name=name, timeout=800)
    print(f"\njob {name}: {result.reason} exit {result.exit_code} in {time.monotonic() - started:.0f} s")
    assert TOKEN not in result.stdout + result.stderr, "the git token was printed"
    return result


def serving_url(day) -> str:
    return f"http://127.0.0.1:{day['kubelet'].services[('rasa-nlu', 5000)].port}"


def served_by(day, model: str, within: float) -> float:
    """Seconds until 8 answers in a row (new connections: both replicas) name ``model``; fails after ``within``."""
    start, run, last = time.monotonic(), 0, None
    while time.monotonic() - start < within:
        try:
            last = requests.post(f"{serving_url(day)}/parse", json={"q": "hello"}, timeout=10).json()["model"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            last = repr(exc)
        run = run + 1 if last == model else 0
        if run >= 8:
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{model} not served by every replica within {within} s (last answer: {last})")


def pull_interval(day) -> float:
    dep = day["kubelet"].find("Deployment", "rasa-nlu")[0]
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    return float(env["NLU_CI_PULL_INTERVAL"])


def pushed(day) -> dict[str, list]:
    families = text_string_to_metric_families(day["pushgateway"].metrics_text())
    return {f.name: [s for s in f.samples if s.labels.get("job") == "nlu_ci"] for f in families}


def test_the_prod_cronjob_clones_trains_and_promotes_a(day):
    needs(day)
    kubelet = day["kubelet"]
    job = kubelet.find("CronJob", "nlu-ci")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["securityContext"]["runAsUser"] == 10001
    result = nightly(day, "nlu-ci-manual-a")
    assert result.exit_code == 0, result.stderr[-4000:]
    run = last_run(day)
    assert run["outcome"] == "promoted", run
    day["a"] = active(day)
    report = json.loads((store(day) / day["a"] / "nlu_ci.json").read_text())
    assert report["data"]["revision"] == day["sha"]["a"], report["data"]  # the commit the job cloned
    assert report["data"]["train_examples"] + report["data"]["test_examples"] == len(day["steps"]["base"])
    # the clone went over smart HTTP with the Secret's token (basic auth), nothing else reached the server
    sent = {h for h in day["git"].seen if h}
    assert sent == {"Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()}, sent
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in store(day).rglob("*") if not p.is_symlink()}
    assert owners == {(10001, 10001)}, owners  # written by runAsUser 10001 (fsGroup 10001)
    metrics = pushed(day)
    assert [s.labels["outcome"] for s in metrics["nlu_ci_run_outcome"] if s.value == 1] == ["promoted"]
    assert [s.labels["model"] for s in metrics["nlu_ci_active_model_info"] if s.value == 1] == [day["a"]]
    day["done"].append("promote_a")


def test_the_serving_deployments_serve_a(day):
    needs(day, "promote_a")
    kubelet = day["kubelet"]
    models = kubelet.start_deployment("nlu-ci-model-server")
    day["deployments"].append(models)
    assert models.wait_ready(120), models.logs()[-3000:]
    rasa = kubelet.start_deployment("rasa-nlu")
    day["deployments"].append(rasa)
    assert len(rasa.pods) == 2
    assert rasa.wait_ready(300), rasa.logs()[-3000:]
    assert requests.get(f"{serving_url(day)}/ready", timeout=10).status_code == 200
    served_by(day, day["a"], within=30)
    texts = [e["text"] for e in day["steps"]["growth"][::7]]
    day["traffic"] = Traffic(serving_url(day), texts)
    day["traffic"].start()
    time.sleep(3)
    assert day["traffic"].answers and not day["traffic"].failures, day["traffic"].failures[:5]
    day["done"].append("serve_a")


def test_a_commit_with_more_examples_and_a_new_intent_promotes_b_and_serves_it(day):
    needs(day, "promote_a", "serve_a")
    growth = day["steps"]["growth"]
    day["sha"]["b"] = day["repo"].commit({"data/nlu.yml": project_files(growth)["data/nlu.yml"],
                                          "domain.yml": project_files(growth)["domain.yml"],
                                          "data/stories.yml": project_files(growth)["data/stories.yml"]},
                                         f"more examples and a new intent: {NEW_INTENT}")
    result = nightly(day, "nlu-ci-manual-b")
    assert result.exit_code == 0, result.stderr[-4000:]
    run = last_run(day)
    assert run["outcome"] == "promoted", run
    day["b"] = active(day)
    assert day["b"] != day["a"]
    report = json.loads((store(day) / day["b"] / "nlu_ci.json").read_text())
    assert report["data"]["revision"] == day["sha"]["b"]
    promoted_at = (store(day) / "ACTIVE").stat().st_mtime  # the promotion: ACTIVE replaced
    served_by(day, day["b"], within=pull_interval(day) + 2)
    traffic = day["traffic"]
    # the client's last answer from A: after it, every replica answered with B
    swap = max(t for t, m in traffic.answers if m == day["a"]) - promoted_at
    print(f"B served by every replica {swap:.1f} s after its promotion (pull interval {pull_interval(day):.0f} s)")
    assert swap <= pull_interval(day) + 2, swap
    assert not traffic.failures, traffic.failures[:5]
    assert {m for _, m in traffic.answers} >= {day["a"], day["b"]}, "the client saw the swap"
    recipe = next(e["text"] for e in growth if e["intent"] == NEW_INTENT)
    answer = requests.post(f"{serving_url(day)}/parse", json={"q": recipe}, timeout=10).json()
    assert answer["intent"]["name"] == NEW_INTENT, answer
    metrics = pushed(day)
    assert [s.labels["model"] for s in metrics["nlu_ci_active_model_info"] if s.value == 1] == [day["b"]]
    day["done"].append("promote_b")


def test_a_branch_relabelling_half_an_intent_fails_the_ci_check(day):
    needs(day, "promote_b")
    texts = relabel_branch(day)
    repo = day["repo"]
    # actions/checkout: a shallow clone of the branch, its token kept as an extraheader in the clone's config
    ws = day["root"] / "ci" / "assistant"
    ws.parent.mkdir()
    url = day["git"].url(repo)
    header = "AUTHORIZATION: basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    git("-c", f"http.extraheader={header}", "clone", "--quiet", "--depth", "1", "--branch", "relabel", url, str(ws))
    git("config", "--local", f"http.{url}.extraheader", header, cwd=ws)
    models_url = f"http://127.0.0.1:{day['kubelet'].services[('nlu-ci-models', 8080)].port}"
    result = run_check_job(day["buildah"], IMAGE, ws, {"vars.NLU_CI_ACTIVE_MODEL_URL": models_url,
                                                       "github.base_ref": "main"},
                           env_edits={"NLU_CI_DATA": "data"})  # the team's Rasa 3 layout: data/ (a folder)
    out = result.stdout + result.stderr
    assert result.returncode == 3, out[-4000:]
    assert TOKEN not in out and "command not found" not in out
    summary = (ws / "nlu-ci-summary.md").read_text()
    assert summary.startswith("## ❌"), summary[:500]
    assert f"**{len(texts)} relabelled**" in summary
    (report_path,) = (ws / "nlu-ci-store" / "default" / "reports").glob("*.json")
    report = json.loads(report_path.read_text())
    assert report["check"]["judged_by"]["active_model"] == day["b"]  # pulled from the model server Service
    diff = report["data_diff"]
    assert diff["relabelled"] == len(texts) and diff["added"] == 0 and diff["removed"] == 0, diff
    assert {r["text"] for r in diff["relabelled_examples"]} <= texts
    assert all(r["old_intent"] == RELABEL_FROM and r["new_intent"] == RELABEL_TO for r in diff["relabelled_examples"])
    day["done"].append("check")


def test_merged_anyway_the_nightly_run_rejects_it_and_b_stays_served(day):
    """Judged by the labels B was judged by (src/nlu_ci/check/held_out.py): the relabelled held-out examples keep B's
    label in the gate, are listed in data_diff and scored apart with their new labels."""
    needs(day, "promote_b")
    texts = relabel_branch(day)
    repo = day["repo"]
    git("merge", "--quiet", "--no-ff", "-m", "Merge branch 'relabel'", "relabel", cwd=repo.work)
    git("push", "--quiet", "origin", "main", cwd=repo.work)
    day["merged"] = True
    result = nightly(day, "nlu-ci-manual-noisy")
    assert result.exit_code == 0, result.stderr[-4000:]
    run = last_run(day)
    report = json.loads((store(day) / "last_report.json").read_text())
    assert report["started_at"] == run["started_at"], (report["started_at"], run)
    diff = report["data_diff"]
    print(f"relabelled: {diff['relabelled']} ({diff['held_out_relabelled']} held out), judged by {diff['judged_by']}; "
          f"candidate {report['candidate']['intent_f1']:.3f} vs active {report['active']['intent_f1']:.3f}")
    assert diff["relabelled"] == len(texts) and diff["held_out_relabelled"] >= 1, diff
    assert {r["text"] for r in diff["relabelled_examples"]} <= texts
    assert diff["judged_by"] == "the active model's labels" and diff["accepted"] is False
    assert diff["held_out"]["examples"] == diff["held_out_relabelled"]
    assert any(f"--accept-relabels {diff['digest']}" in w for w in report["warnings"]), report["warnings"]
    assert run["outcome"] == "rejected", run
    assert active(day) == day["b"]
    served_by(day, day["b"], within=pull_interval(day) + 2)
    assert not day["traffic"].failures, day["traffic"].failures[:5]
    day["done"].append("reject")


def test_a_rollback_to_a_holds_against_b_data(day):
    needs(day, "promote_a", "promote_b", "serve_a")
    repo = day["repo"]
    if day.get("merged"):
        git("revert", "--no-edit", "-m", "1", "HEAD", cwd=repo.work)  # main's data is B's again
        git("push", "--quiet", "origin", "main", cwd=repo.work)
    args = ["rollback"]  # README's recipe: the previous model (A, when B was promoted after it)
    if active(day) != day["b"]:  # an earlier step left another model serving: B first, then A by name
        again = day["kubelet"].run_job("nlu-ci", job_name="nlu-ci-rollback-0", timeout=300, args=["rollback", day["b"]])
        assert again.exit_code == 0 and active(day) == day["b"], again.stderr[-3000:]
        args = ["rollback", day["a"]]
    rollback = day["kubelet"].run_job("nlu-ci", job_name="nlu-ci-rollback-1", timeout=300, args=args)
    assert rollback.exit_code == 0, rollback.stderr[-3000:]
    assert active(day) == day["a"]
    served_by(day, day["a"], within=pull_interval(day) + 2 + 5)
    result = nightly(day, "nlu-ci-manual-after-rollback")
    assert result.exit_code == 0, result.stderr[-4000:]
    run = last_run(day)
    assert run["outcome"] != "promoted", run
    assert active(day) == day["a"], "the rolled-back-from data was promoted again"
    time.sleep(pull_interval(day) + 2)
    served_by(day, day["a"], within=5)
    assert not day["traffic"].failures, day["traffic"].failures[:5]
    day["done"].append("rollback")


def test_the_serving_port_refuses_delete_and_train(day):
    needs(day, "serve_a")
    url, serving = serving_url(day), active(day)  # A after the rollback step; whatever serves if that failed
    for _ in range(4):  # both replicas (new connection each)
        gone = requests.delete(f"{url}/models", params={"project": "default", "model": serving}, timeout=10)
        train = requests.post(f"{url}/train", params={"project": "default"}, data=b"language: en\n", timeout=10)
        assert gone.status_code in (404, 405) and train.status_code in (404, 405), (gone.text, train.text)
    time.sleep(pull_interval(day) + 2)
    served_by(day, serving, within=5)
    assert requests.get(f"{url}/ready", timeout=10).status_code == 200
    traffic = day["traffic"]
    traffic.stopped.set()
    traffic.join(timeout=20)
    assert not traffic.failures, traffic.failures[:5]
    print(f"client: {len(traffic.answers)} answers, 0 failed")
    day["done"].append("refuse")
