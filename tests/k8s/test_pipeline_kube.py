"""`nlu-ci run` through the real CLI, in "a cluster": the loopback API server enforcing the rendered Role.

Real rasa_nlu training on the sample data; the Job's identity comes in through the same environment
variables the CronJob's downward API sets.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from nlu_ci import kube
from support.data import SAMPLE
from support.kube_fake import deployment

from .conftest import NS
from .manifests import RESTART_TREE, find, one, render

JOB = "nlu-ci-29120000"


def rules(tree: str) -> list[dict]:
    docs = render(tree)
    bound = {rb["roleRef"]["name"] for rb in find(docs, "RoleBinding")}
    return [rule for name in sorted(bound) for rule in one(docs, "Role", name)["rules"]]


@pytest.fixture
def in_cluster_env(kubeconfig):
    return dict(NLU_CI_KUBERNETES="on", KUBECONFIG=str(kubeconfig), JOB_NAME=JOB, JOB_UID="job-uid-1",
                POD_NAME=f"{JOB}-x7k2p", POD_NAMESPACE=NS, POD_UID="pod-uid-1")


def events(apiserver) -> list[dict]:
    return sorted(apiserver.list("events", NS), key=lambda e: e["eventTime"])


def test_promoting_run_takes_and_releases_the_lease_and_tells_the_job(cli, apiserver, in_cluster_env):
    apiserver.allow(rules("k8s"))
    r = cli(["run", "--data", str(SAMPLE), "--json"], **in_cluster_env)
    assert r.code == 0, r.output
    report = r.json
    assert report["outcome"] == "promoted"
    lease = apiserver.get("leases", NS, "nlu-ci")
    assert lease is not None and "holderIdentity" not in lease["spec"]  # taken, then released
    puts = [x for x in apiserver.requests if x["path"].endswith("/leases/nlu-ci") and x["method"] == "PUT"]
    assert puts and '"holderIdentity": "nlu-ci-29120000"' not in puts[-1]["body"]  # the release
    (event,) = events(apiserver)
    assert (event["type"], event["reason"]) == ("Normal", "ModelPromoted")
    assert event["regarding"] == {"apiVersion": "batch/v1", "kind": "Job", "name": JOB, "namespace": NS,
                                  "uid": "job-uid-1"}
    assert report["candidate"]["model"] in event["note"] and f"{report['candidate']['intent_f1']:.3f}" in event["note"]
    assert report["kubernetes"] == {"event": True, "regarding": f"job/{JOB}", "lease": f"lease {NS}/nlu-ci",
                                    "lease_held": True}
    assert [(x["method"], x["path"], x["status"], x["user_agent"]) for x in apiserver.requests if x["status"] in (401, 403)] == []


def test_a_run_while_another_job_holds_the_lease_is_locked(cli, apiserver, in_cluster_env):
    apiserver.allow(rules("k8s"))
    now = kube.microtime(datetime.now(UTC))
    apiserver.put("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": "nlu-ci", "namespace": NS},
                             "spec": {"holderIdentity": "nlu-ci-manual-1", "leaseDurationSeconds": 3600,
                                      "acquireTime": now, "renewTime": now, "leaseTransitions": 3}})
    r = cli(["run", "--data", str(SAMPLE), "--json"], **in_cluster_env)
    assert r.code == 0, r.output
    assert r.json["outcome"] == "locked" and "held by nlu-ci-manual-1" in r.json["error"]
    assert "train" not in r.json["durations"]
    assert apiserver.get("leases", NS, "nlu-ci")["spec"]["holderIdentity"] == "nlu-ci-manual-1"
    (event,) = events(apiserver)
    assert event["reason"] == "RunLocked" and "nlu-ci-manual-1" in event["note"]
    assert event["regarding"]["name"] == JOB


def test_bad_data_fails_the_run_with_a_warning_event(cli, apiserver, in_cluster_env, tmp_path):
    apiserver.allow(rules("k8s"))
    r = cli(["run", "--data", str(tmp_path / "missing.json"), "--json"], **in_cluster_env)
    assert r.code == 2, r.output  # podFailurePolicy: FailJob
    (event,) = events(apiserver)
    assert (event["type"], event["reason"]) == ("Warning", "RunFailed")
    assert event["note"].startswith("failed (exit 2): ") and "missing.json" in event["note"]
    assert "holderIdentity" not in apiserver.get("leases", NS, "nlu-ci")["spec"]


def test_promotion_restarts_the_serving_deployment(cli, apiserver, in_cluster_env):
    apiserver.allow(rules(RESTART_TREE))
    apiserver.put("deployments", deployment(NS, "rasa-nlu"))
    r = cli(["run", "--data", str(SAMPLE), "--json"], NLU_CI_RESTART_DEPLOYMENT="rasa-nlu", **in_cluster_env)
    assert r.code == 0 and r.json["outcome"] == "promoted", r.output
    annotations = apiserver.get("deployments", NS, "rasa-nlu")["spec"]["template"]["metadata"]["annotations"]
    assert r.json["restart"] == {"deployment": "rasa-nlu", "ok": True,
                                 "restarted_at": annotations[kube.RESTARTED_AT]}
    assert [e["reason"] for e in events(apiserver)] == ["DeploymentRestarted", "ModelPromoted"]
    # the next run on the same data skips: no promotion, no restart
    before = apiserver.get("deployments", NS, "rasa-nlu")["metadata"]["generation"]
    r2 = cli(["run", "--data", str(SAMPLE), "--json"], NLU_CI_RESTART_DEPLOYMENT="rasa-nlu", **in_cluster_env)
    assert r2.json["outcome"] == "skipped" and "restart" not in r2.json
    assert apiserver.get("deployments", NS, "rasa-nlu")["metadata"]["generation"] == before


def test_a_failed_restart_keeps_the_promotion_and_warns(cli, apiserver, in_cluster_env):
    apiserver.allow(rules("k8s"))  # no rollout-restart component: patch is forbidden
    apiserver.put("deployments", deployment(NS, "rasa-nlu"))
    r = cli(["run", "--data", str(SAMPLE), "--json"], NLU_CI_RESTART_DEPLOYMENT="rasa-nlu", **in_cluster_env)
    assert r.code == 0 and r.json["outcome"] == "promoted", r.output
    assert r.json["restart"]["ok"] is False and "403 Forbidden" in r.json["restart"]["error"]
    assert any("rollout restart of deployment nlu-ci/rasa-nlu failed" in w for w in r.json["warnings"])
    assert [(e["type"], e["reason"]) for e in events(apiserver)] == [("Warning", "DeploymentRestartFailed"),
                                                                    ("Normal", "ModelPromoted")]


PERMISSIVE_POLICY = """min_intent_f1: 0.0
min_improvement: off
significance: off
bootstrap: off
per_intent_max_drop: off
entity_f1: off
"""


@pytest.mark.parametrize("registry", ["store", "platform"])
def test_a_lease_taken_over_while_training_promotes_nothing(registry, apiserver, in_cluster_env, monkeypatch,
                                                            tmp_path):
    """Another Job takes the Lease while this run trains (a training past NLU_CI_LEASE_DURATION, a manual run
    that took it once it looked expired): the run checks the Lease right before promoting and promotes nothing:
    ACTIVE (and with a platform, the tag) stays on the model promoted before."""
    from nlu_ci import pipeline
    from nlu_ci.data.dataset import hash_unit
    from nlu_ci.settings import from_env
    from support.data import FAST_CONFIG, load_sample
    from support.platform_fake import FakePlatform

    apiserver.allow(rules("k8s"))
    (tmp_path / "fast_config.yml").write_text(FAST_CONFIG)
    (tmp_path / "policy.yml").write_text(PERMISSIVE_POLICY)
    data = load_sample()
    fewer = json.loads(json.dumps(data))
    fewer["rasa_nlu_data"]["common_examples"] = data["rasa_nlu_data"]["common_examples"][5:]
    (tmp_path / "fewer.json").write_text(json.dumps(fewer))
    env = dict(in_cluster_env, NLU_CI_MODELS_DIR=str(tmp_path / "models"), NLU_CI_DATA=str(SAMPLE),
               NLU_CI_CONFIG=str(tmp_path / "fast_config.yml"), NLU_CI_POLICY=str(tmp_path / "policy.yml"))
    platform = FakePlatform(token="tok-lease-test-0123456789", data=data, workdir=tmp_path / "platform",
                            held_out=[e for e in data["rasa_nlu_data"]["common_examples"]
                                      if hash_unit(e["text"], "nlu-ci") < 0.2])
    (tmp_path / "platform").mkdir()
    with platform:
        if registry == "platform":
            env.update(RASA_PLATFORM_HOST=platform.url, RASA_API_TOKEN=platform.token)
        first = pipeline.run(from_env(env))
        assert first["outcome"] == "promoted", first
        model_a = first["candidate"]["model"]
        assert (not platform.tagged("active")) if registry == "store" else platform.tagged("active")
        tagged_before = platform.tagged("active")

        real_train = pipeline.train
        taken = {}

        def train_then_lose_the_lease(*args, **kwargs):
            out = real_train(*args, **kwargs)
            lease = apiserver.get("leases", NS, "nlu-ci")
            assert lease["spec"]["holderIdentity"] == JOB  # held while training
            now = kube.microtime(datetime.now(UTC))
            lease["spec"].update(holderIdentity="nlu-ci-manual-7", acquireTime=now, renewTime=now)
            taken["lease"] = apiserver.put("leases", lease)
            return out

        monkeypatch.setattr(pipeline, "train", train_then_lose_the_lease)
        platform.data = fewer
        report = pipeline.run(from_env(dict(env, NLU_CI_DATA=str(tmp_path / "fewer.json"))))
        tagged_after = platform.tagged("active")
    assert taken, "training never ran"
    assert (report["outcome"], report["exit_code"]) == ("failed", 1), report
    assert "nlu-ci-manual-7" in report["error"] and "nothing promoted" in report["error"]
    assert report["decision"]["promote"] is True  # the gate said yes: only the lost Lease stopped it
    store = tmp_path / "models" / "default"
    assert (store / "ACTIVE").read_text().strip() == model_a
    assert tagged_after == tagged_before
    assert "promote" in report["durations"] and "retention" not in report["durations"]
    history = [json.loads(line) for line in (store / "history.jsonl").read_text().splitlines()]
    assert [h.get("event") for h in history].count("promotion") == 1 and history[-1]["outcome"] == "failed"
    failed = [e for e in events(apiserver) if e["reason"] == "RunFailed"]
    assert len(failed) == 1 and failed[0]["type"] == "Warning"
    assert "nlu-ci-manual-7" in failed[0]["note"] and failed[0]["regarding"]["name"] == JOB
    # the other Job keeps its Lease: this run does not release what is no longer its own
    assert apiserver.get("leases", NS, "nlu-ci")["spec"]["holderIdentity"] == "nlu-ci-manual-7"
