"""nlu_ci.kube through the official kubernetes client against a real loopback API server."""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from nlu_ci import kube, redact
from nlu_ci.errors import ConfigError, LockedError, RuntimeFailure
from support.kube_fake import MICROTIME, FakeApiServer, deployment, job_pod

from .conftest import NS

DOWNWARD_API = {"pod_name": "POD_NAME", "pod_namespace": "POD_NAMESPACE", "pod_uid": "POD_UID",
                "job_name": "JOB_NAME", "job_uid": "JOB_UID"}


def settings(**kw):
    """Settings as the job has them: the downward API's environment variables read into fields (as
    ``nlu_ci.settings`` reads them), explicit keywords first."""
    base = dict(kubernetes="on", pod_name=None, pod_namespace=None, lease_name="nlu-ci", lease_duration=60,
                http_timeout=5.0, restart_deployment=None)
    base.update(kw)
    for name, env in DOWNWARD_API.items():
        if base.get(name) is None:
            base[name] = os.environ.get(env) or None
    return SimpleNamespace(**base)


def session(name: str = "pod-a", **kw) -> kube.KubeSession:
    s = kube.connect(settings(pod_name=name, **kw))
    assert s is not None
    return s


def lease(server: FakeApiServer) -> dict:
    obj = server.get("leases", NS, "nlu-ci")
    assert obj is not None
    return obj


# ---------------------------------------------------------------------------- connect

def test_connect_off_and_auto_outside_a_cluster(kubeconfig):
    assert kube.connect(settings(kubernetes="off")) is None
    # a kubeconfig alone is not "in a cluster": auto stays off
    assert kube.connect(settings(kubernetes="auto")) is None


def test_connect_on_without_kubeconfig_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"--kubernetes on: not in a pod and no usable kubeconfig .*missing"):
        kube.connect(settings(kubernetes="on"))


def test_connect_on_uses_kubeconfig_namespace_and_identity(kubeconfig, apiserver):
    s = kube.connect(settings(kubernetes="on"))
    assert s.namespace == NS and s.source.startswith("kubeconfig")
    assert re.fullmatch(r".+-\d+", s.identity)  # host-pid outside a pod
    s2 = kube.connect(settings(kubernetes="on", pod_name="p1", pod_namespace="other"))
    assert (s2.namespace, s2.identity) == ("other", "p1")


def test_in_cluster_over_tls_with_service_account_files(tmp_path, monkeypatch):
    server = FakeApiServer(tls_dir=tmp_path / "tls").start()
    try:
        sa = tmp_path / "sa"
        sa.mkdir()
        (sa / "token").write_text(server.token)
        (sa / "ca.crt").write_bytes(server.ca_file.read_bytes())
        (sa / "namespace").write_text("team-nlu\n")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
        s = kube.connect(settings(kubernetes="auto", pod_name="nlu-ci-28861-abcde"), sa_dir=sa)
        assert s is not None and s.source == "in-cluster" and s.namespace == "team-nlu"
        s.acquire_lease()
        assert server.get("leases", "team-nlu", "nlu-ci")["spec"]["holderIdentity"] == "nlu-ci-28861-abcde"
        # without a token file it is not a cluster, whatever the environment says
        (sa / "token").unlink()
        assert kube.connect(settings(kubernetes="auto"), sa_dir=sa) is None
    finally:
        server.stop()


def test_wrong_token_is_a_runtime_failure_naming_the_lease(kubeconfig, apiserver):
    apiserver.token = "another-token"
    with pytest.raises(RuntimeFailure, match=r"cannot read lease nlu-ci/nlu-ci: 401 Unauthorized"):
        session().acquire_lease()


# ---------------------------------------------------------------------------- Lease

def test_acquire_creates_the_lease_with_microtimes(kubeconfig, apiserver):
    a = session("pod-a")
    a.acquire_lease()
    obj = lease(apiserver)
    spec = obj["spec"]
    assert spec["holderIdentity"] == "pod-a" and spec["leaseDurationSeconds"] == 60
    assert spec["leaseTransitions"] == 0
    assert MICROTIME.match(spec["renewTime"]) and MICROTIME.match(spec["acquireTime"])
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - renewed).total_seconds()) < 5
    assert a.held


def test_times_on_a_whole_second_keep_their_fraction(kubeconfig, apiserver, monkeypatch):
    """The typed client would send isoformat() ('...:05+00:00'), which the API server refuses."""
    monkeypatch.setattr(kube.api, "_now", lambda: datetime(2026, 11, 27, 0, 0, 5, tzinfo=UTC))
    s = session("pod-a")
    s.acquire_lease()
    assert lease(apiserver)["spec"]["renewTime"] == "2026-11-27T00:00:05.000000Z"
    assert s.emit_event("promoted", "ok")
    assert apiserver.list("events", NS)[0]["eventTime"] == "2026-11-27T00:00:05.000000Z"


def test_a_live_holder_locks_others_out_with_its_name(kubeconfig, apiserver):
    session("pod-a").acquire_lease()
    rv = lease(apiserver)["metadata"]["resourceVersion"]
    with pytest.raises(LockedError, match=r"lease nlu-ci/nlu-ci is held by pod-a \(renewed .*expires in \d+ s\)"):
        session("pod-b").acquire_lease()
    assert lease(apiserver)["metadata"]["resourceVersion"] == rv  # nothing written
    # the holder itself may acquire again (a retried pod with the same name)
    session("pod-a").acquire_lease()
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-a"


def test_an_expired_lease_is_taken_over(kubeconfig, apiserver, caplog):
    session("pod-a").acquire_lease()
    apiserver.age_lease(NS, "nlu-ci", seconds=61)  # holder stopped renewing (pod killed)
    b = session("pod-b")
    with caplog.at_level(logging.WARNING, logger="nlu_ci.kube"):
        b.acquire_lease()
    spec = lease(apiserver)["spec"]
    assert spec["holderIdentity"] == "pod-b" and spec["leaseTransitions"] == 1
    assert "took over expired lease nlu-ci/nlu-ci from pod-a" in caplog.text
    # not yet expired by one second less: still locked
    apiserver.age_lease(NS, "nlu-ci", seconds=59)
    with pytest.raises(LockedError, match="held by pod-b"):
        session("pod-c").acquire_lease()


def test_release_frees_it_for_the_next_run(kubeconfig, apiserver):
    a = session("pod-a")
    a.acquire_lease()
    assert a.release_lease() is True
    spec = lease(apiserver)["spec"]
    assert "holderIdentity" not in spec and not a.held
    b = session("pod-b")
    b.acquire_lease()
    spec = lease(apiserver)["spec"]
    assert spec["holderIdentity"] == "pod-b" and spec["leaseTransitions"] == 1
    assert a.release_lease() is False  # not held any more: nothing written
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-b"


def test_release_does_not_clear_another_holder(kubeconfig, apiserver, caplog):
    a = session("pod-a")
    a.acquire_lease()
    apiserver.age_lease(NS, "nlu-ci", seconds=120)
    session("pod-b").acquire_lease()
    with caplog.at_level(logging.WARNING, logger="nlu_ci.kube"):
        assert a.release_lease() is False
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-b"
    assert "no longer ours (holder pod-b)" in caplog.text


def test_renew_moves_renew_time_and_detects_a_takeover(kubeconfig, apiserver):
    a = session("pod-a")
    a.acquire_lease()
    apiserver.age_lease(NS, "nlu-ci", seconds=30)
    before = lease(apiserver)["spec"]
    a.renew_lease()
    after = lease(apiserver)["spec"]
    assert after["renewTime"] > before["renewTime"]
    assert after["acquireTime"] == before["acquireTime"] and after["holderIdentity"] == "pod-a"
    apiserver.age_lease(NS, "nlu-ci", seconds=120)
    session("pod-b").acquire_lease()
    with pytest.raises(LockedError, match="taken over by pod-b"):
        a.renew_lease()


def test_conflict_between_read_and_write_is_locked_naming_the_winner(kubeconfig, apiserver):
    """A reads an expired Lease, B takes it over, A's replace carries the stale resourceVersion: 409."""
    session("pod-old").acquire_lease()
    apiserver.age_lease(NS, "nlu-ci", seconds=600)
    a, b = session("pod-a"), session("pod-b")
    real_read = a._read_lease
    calls = []

    def read_then_b_wins():
        current = real_read()
        if not calls:
            b.acquire_lease()
        calls.append(1)
        return current

    a._read_lease = read_then_b_wins
    with pytest.raises(LockedError, match=r"changed while taking it \(409 Conflict\); now held by pod-b"):
        a.acquire_lease()
    assert any(r["method"] == "PUT" and r["status"] == 409 for r in apiserver.requests)
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-b"


@pytest.mark.parametrize("expired", [False, True], ids=["no-lease-yet", "expired-lease"])
def test_concurrent_runs_exactly_one_wins(kubeconfig, apiserver, expired):
    if expired:
        session("pod-old").acquire_lease()
        apiserver.age_lease(NS, "nlu-ci", seconds=600)
    sessions = [session(f"pod-{i}") for i in range(8)]
    barrier = threading.Barrier(len(sessions))
    results: dict[str, str] = {}

    def run(s):
        barrier.wait()
        try:
            s.acquire_lease()
            results[s.identity] = "won"
        except LockedError as err:
            results[s.identity] = f"locked: {err}"

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [k for k, v in results.items() if v == "won"]
    assert len(results) == 8 and len(winners) == 1, results
    assert lease(apiserver)["spec"]["holderIdentity"] == winners[0]


def test_transient_errors_are_retried(kubeconfig, apiserver):
    apiserver.fail_next("GET", r"/leases/nlu-ci$", 503)
    apiserver.fail_next("POST", r"/leases$", 500)
    session("pod-a").acquire_lease()
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-a"
    statuses = [r["status"] for r in apiserver.requests]
    assert 503 in statuses and 500 in statuses


def test_forbidden_lease_access_names_the_rbac_need(kubeconfig, apiserver):
    apiserver.allow([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}])
    with pytest.raises(RuntimeFailure, match=r"cannot read lease nlu-ci/nlu-ci: 403 Forbidden: .*"
                                             r"RBAC: the ServiceAccount needs get/create/update on leases"):
        session().acquire_lease()


# ---------------------------------------------------------------------------- Events

def test_event_regards_the_job_from_the_downward_api(kubeconfig, apiserver, monkeypatch):
    monkeypatch.setenv("JOB_NAME", "nlu-ci-29120000")
    monkeypatch.setenv("JOB_UID", "8e0c0c8e-uid")
    monkeypatch.setenv("POD_UID", "pod-uid-1")
    redact.register("s3cr3t-token-value")
    s = session("nlu-ci-29120000-x7k2p")
    assert s.emit_event("promoted", "promoted model_20261127-000102: intent_f1 0.91 > 0.88\n"
                                    "token s3cr3t-token-value") is True
    (event,) = apiserver.list("events", NS)
    assert event["regarding"] == {"apiVersion": "batch/v1", "kind": "Job", "name": "nlu-ci-29120000",
                                  "namespace": NS, "uid": "8e0c0c8e-uid"}
    assert event["related"]["name"] == "nlu-ci-29120000-x7k2p" and event["related"]["uid"] == "pod-uid-1"
    assert (event["type"], event["reason"], event["action"]) == ("Normal", "ModelPromoted", "Promote")
    assert event["metadata"]["name"].startswith("nlu-ci-29120000.")
    assert event["note"] == "promoted model_20261127-000102: intent_f1 0.91 > 0.88 token ***"
    assert event["reportingController"] == "nlu-ci" and event["reportingInstance"] == "nlu-ci-29120000-x7k2p"
    assert MICROTIME.match(event["eventTime"])


@pytest.mark.parametrize("outcome,kind,reason", [("rejected", "Warning", "ModelRejected"),
                                                 ("failed", "Warning", "RunFailed"),
                                                 ("locked", "Normal", "RunLocked"),
                                                 ("some_new_outcome", "Normal", "RunSomeNewOutcome")])
def test_event_type_and_reason_per_outcome(kubeconfig, apiserver, monkeypatch, outcome, kind, reason):
    monkeypatch.setenv("JOB_NAME", "nlu-ci-manual-1")
    assert session().emit_event(outcome, "x" * 3000) is True  # long notes are cut to the API's 1 KiB limit
    (event,) = apiserver.list("events", NS)
    assert (event["type"], event["reason"]) == (kind, reason)
    assert len(event["note"].encode()) <= 1024 and event["note"].endswith("...")


def test_event_finds_the_job_from_the_pod_owner(kubeconfig, apiserver):
    apiserver.put("pods", job_pod(NS, "nlu-ci-manual-1-abcde", "nlu-ci-manual-1", "job-uid-7"))
    s = session("nlu-ci-manual-1-abcde")
    assert s.emit_event("rejected", "rejected: intent_f1 0.80 < 0.88")
    (event,) = apiserver.list("events", NS)
    assert event["regarding"]["kind"] == "Job" and event["regarding"]["name"] == "nlu-ci-manual-1"
    assert event["regarding"]["uid"] == "job-uid-7"


def test_event_falls_back_to_the_pod_when_it_cannot_read_it(kubeconfig, apiserver, monkeypatch):
    monkeypatch.setenv("POD_UID", "pod-uid-9")
    apiserver.allow([{"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]}])
    assert session("lonely-pod").emit_event("failed", "training crashed")
    (event,) = apiserver.list("events", NS)
    assert event["regarding"] == {"apiVersion": "v1", "kind": "Pod", "name": "lonely-pod", "namespace": NS,
                                  "uid": "pod-uid-9"}


def test_emit_event_never_raises(kubeconfig, apiserver, caplog):
    apiserver.allow([])  # nothing allowed
    with caplog.at_level(logging.WARNING, logger="nlu_ci.kube"):
        assert session().emit_event("failed", "boom") is False
    assert "could not record the Kubernetes Event 'failed': 403 Forbidden" in caplog.text
    apiserver.stop()  # the API server is gone entirely
    with caplog.at_level(logging.WARNING, logger="nlu_ci.kube"):
        assert session().emit_event("failed", "boom") is False


# ---------------------------------------------------------------------------- rollout restart

def test_restart_deployment_patches_the_template_annotation(kubeconfig, apiserver):
    apiserver.put("deployments", deployment("rasa", "rasa-nlu"))
    s = session()
    stamp = s.restart_deployment("rasa/rasa-nlu")
    dep = apiserver.get("deployments", "rasa", "rasa-nlu")
    assert dep["spec"]["template"]["metadata"]["annotations"][kube.RESTARTED_AT] == stamp
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "rasa-nlu"}  # merged, not replaced
    assert dep["metadata"]["generation"] == 2
    patch = [r for r in apiserver.requests if r["method"] == "PATCH"][-1]
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)


def test_restart_deployment_errors(kubeconfig, apiserver):
    s = session()
    with pytest.raises(RuntimeFailure, match=r"rollout restart of deployment nlu-ci/rasa-nlu failed: 404 Not Found"):
        s.restart_deployment("rasa-nlu")
    with pytest.raises(ConfigError, match=r"NLU_CI_RESTART_DEPLOYMENT: 'a/b/c' is not"):
        s.restart_deployment("a/b/c")
    with pytest.raises(ConfigError):
        s.restart_deployment("Bad_Name")


def test_parse_deployment_ref():
    assert kube.parse_deployment_ref("rasa-nlu", "ns1") == ("ns1", "rasa-nlu")
    assert kube.parse_deployment_ref("rasa/rasa-nlu", "ns1") == ("rasa", "rasa-nlu")
    assert kube.parse_deployment_ref("deployment/rasa-nlu", "ns1") == ("ns1", "rasa-nlu")


def test_microtime_always_has_six_fraction_digits():
    assert kube.microtime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"


# ---------------------------------------------------------------------------- identity, keep-alive

def test_the_job_holds_the_lease_so_its_retry_pod_gets_it_back(kubeconfig, apiserver, monkeypatch):
    monkeypatch.setenv("JOB_NAME", "nlu-ci-29120000")
    first = session("nlu-ci-29120000-aaaaa")
    first.acquire_lease()  # then the pod is OOM-killed: no release
    first._stop_keepalive()
    assert lease(apiserver)["spec"]["holderIdentity"] == "nlu-ci-29120000"
    retry = session("nlu-ci-29120000-bbbbb")
    retry.acquire_lease()
    monkeypatch.setenv("JOB_NAME", "nlu-ci-manual-1")
    with pytest.raises(LockedError, match="held by nlu-ci-29120000"):
        session("nlu-ci-manual-1-ccccc").acquire_lease()
    retry.release_lease()


def test_a_held_lease_is_renewed_in_the_background(kubeconfig, apiserver):
    s = kube.connect(settings(pod_name="pod-a", lease_duration=60))
    assert s.renew_every == 20  # a third of the duration, like client-go's leader election
    s.renew_every = 0.5
    s.acquire_lease()
    first = lease(apiserver)["spec"]["renewTime"]
    deadline = datetime.now(UTC).timestamp() + 10
    while lease(apiserver)["spec"]["renewTime"] == first and datetime.now(UTC).timestamp() < deadline:
        threading.Event().wait(0.2)
    assert lease(apiserver)["spec"]["renewTime"] > first
    assert lease(apiserver)["spec"]["holderIdentity"] == "pod-a"
    assert s.release_lease() is True
    puts = sum(r["method"] == "PUT" for r in apiserver.requests)
    threading.Event().wait(1.5)
    assert sum(r["method"] == "PUT" for r in apiserver.requests) == puts  # the thread has stopped


def test_the_renewal_thread_notices_a_takeover(kubeconfig, apiserver):
    s = kube.connect(settings(pod_name="pod-a", lease_duration=60))
    s.renew_every = 0.3
    s.acquire_lease()
    # another run replaces the holder (as if pod-a had stalled past the expiry)
    obj = lease(apiserver)
    obj["spec"]["holderIdentity"] = "pod-b"
    apiserver.put("leases", obj)
    deadline = datetime.now(UTC).timestamp() + 10
    while s.lost is None and datetime.now(UTC).timestamp() < deadline:
        threading.Event().wait(0.1)
    with pytest.raises(LockedError, match="taken over by pod-b"):
        s.renew_lease()
    assert s.release_lease() is False and lease(apiserver)["spec"]["holderIdentity"] == "pod-b"


def test_bad_kubernetes_settings_fail_before_any_work(kubeconfig):
    with pytest.raises(ConfigError, match="NLU_CI_LEASE_DURATION: 5 s is too short"):
        kube.connect(settings(lease_duration=5))
    with pytest.raises(ConfigError, match="NLU_CI_RESTART_DEPLOYMENT: 'rasa nlu' is not"):
        kube.connect(settings(restart_deployment="rasa nlu"))
    assert kube.connect(settings(kubernetes="off", lease_duration=5)) is None


# ---------------------------------------------------------------------------- the fake keeps the server's rules

def _raw(apiserver, method: str, path: str, body: dict | None = None):
    import requests

    return requests.request(method, apiserver.url + path, json=body, timeout=5,
                            headers={"Authorization": f"Bearer {apiserver.token}"})


def test_every_lease_write_carries_the_version_it_read(kubeconfig, apiserver):
    """The fake refuses an update without ``resourceVersion`` (409, like an update of a changed object),
    so acquiring, renewing and releasing pass only if each write sends the version it read."""
    s = session()
    s.acquire_lease()
    s.renew_lease()
    s.release_lease()
    updates = [r for r in apiserver.requests if r["method"] == "PUT" and "/leases/" in r["path"]]
    assert updates and all(r["status"] == 200 for r in updates), updates
    assert all(json.loads(r["body"])["metadata"]["resourceVersion"] for r in updates)
    current = lease(apiserver)
    blind = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "nlu-ci", "namespace": NS}, "spec": dict(current["spec"], holderIdentity="x")}
    answer = _raw(apiserver, "PUT", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/nlu-ci", blind)
    assert answer.status_code == 409 and answer.json()["reason"] == "Conflict"
    assert lease(apiserver)["spec"].get("holderIdentity") != "x"


def test_the_fake_refuses_a_create_in_a_namespace_that_does_not_exist(kubeconfig, apiserver):
    answer = _raw(apiserver, "POST", "/apis/coordination.k8s.io/v1/namespaces/nowhere/leases",
                  {"kind": "Lease", "metadata": {"name": "nlu-ci"}, "spec": {}})
    assert answer.status_code == 404 and answer.json()["message"] == 'namespaces "nowhere" not found'
    assert _raw(apiserver, "GET", "/apis/coordination.k8s.io/v1/namespaces/nowhere/leases/x").status_code == 404


def test_a_namespace_that_does_not_exist_is_a_failure_naming_it(kubeconfig, apiserver):
    with pytest.raises(RuntimeFailure, match=r'namespaces "nowhere" not found'):
        session(pod_namespace="nowhere").acquire_lease()


def test_rbac_is_checked_on_every_call_even_before_an_injected_fault(kubeconfig, apiserver):
    apiserver.allow([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}])
    apiserver.fail_next("POST", r"/leases$", 503)
    answer = _raw(apiserver, "POST", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
                  {"kind": "Lease", "metadata": {"name": "nlu-ci"}, "spec": {}})
    assert answer.status_code == 403
    assert _raw(apiserver, "GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/nlu-ci").status_code == 404
    assert apiserver.authorised == {("get", "coordination.k8s.io", "leases")}
    # a Role grants nothing outside its namespace
    assert _raw(apiserver, "GET", "/apis/coordination.k8s.io/v1/namespaces/other/leases/nlu-ci").status_code == 403
