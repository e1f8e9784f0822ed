"""Every overlay's workloads can be placed by kube-scheduler's rules (tests/support/scheduler_sim.py) on a
simulated 3-node cluster, in every start order and on every node the filters allow; the prod overlay of
294d929 (serving/same-node appending a second required podAffinity term to the job) cannot; and the
simulator's rules themselves, each against a case whose answer kube-scheduler's filtering.go gives."""
from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from support import scheduler_sim as sim
from support.scheduler_sim import HOSTNAME, Node, Pod

from .manifests import K8S, TREES, need_kubectl, offline_env, one, pod_spec, render


def render_variant(tmp_path, kustomization: str) -> list[dict]:
    """Render a kustomization written in tmp_path; {k8s} in it is the relative path to k8s/."""
    (tmp_path / "kustomization.yaml").write_text(kustomization.replace("{k8s}", os.path.relpath(K8S, tmp_path)))
    proc = subprocess.run([need_kubectl(), "kustomize", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=offline_env())
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def control_plane_and_two_workers() -> list[Node]:
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    return [Node.make("control-plane", labels={"node-role.kubernetes.io/control-plane": ""}, taints=(taint,)),
            Node.make("worker-1", zone="zone-a"), Node.make("worker-2", zone="zone-b")]


# ---------------------------------------------------------------------------- the overlays

EXPECTED_PODS = {  # two runs at once per CronJob; Deployments' replicas + rolling-update surge
    "k8s": {"CronJob/nlu-ci": 2},
    "k8s/overlays/dev": {"CronJob/nlu-ci": 2, "Deployment/pushgateway": 1},
    "k8s/overlays/prod": {"CronJob/nlu-ci": 2, "Deployment/pushgateway": 1, "Deployment/nlu-ci-model-server": 1,
                          "Deployment/rasa-nlu": 3},
    "k8s/overlays/multi-project": {"CronJob/nlu-ci-shop": 2, "CronJob/nlu-ci-support": 2,
                                   "Deployment/pushgateway": 1},
}


@pytest.mark.parametrize("nodes", [sim.three_nodes, control_plane_and_two_workers])
@pytest.mark.parametrize("tree", TREES)
def test_every_workload_of_every_overlay_places_in_every_order(tree, nodes):
    docs = render(tree)
    pods = sim.pods_of(docs)
    owners: dict[str, int] = {}
    for p in pods:
        owners[p.owner] = owners.get(p.owner, 0) + 1
    assert owners == EXPECTED_PODS[tree]
    assert sim.unschedulable(docs, nodes()) == []


OLD_SAME_NODE = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [{k8s}/overlays/prod]
patches:
  # 294d929: the model server had no affinity ...
  - target: {kind: Deployment, name: nlu-ci-model-server}
    patch: '[{"op": "remove", "path": "/spec/template/spec/affinity"}]'
  # ... the job's own term (k8s/base/job/cronjob.yaml) ...
  - target: {kind: CronJob, name: nlu-ci}
    patch: |-
      - op: replace
        path: /spec/jobTemplate/spec/template/spec/affinity
        value:
          podAffinity:
            requiredDuringSchedulingIgnoredDuringExecution:
              - topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app.kubernetes.io/name: nlu-ci
                    app.kubernetes.io/component: trainer
  # ... and k8s/components/serving/same-node appended the model server's term beside it (verbatim)
  - target: {kind: CronJob, name: nlu-ci}
    patch: |-
      - op: add
        path: /spec/jobTemplate/spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/-
        value:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: nlu-ci-model-server
"""


def test_the_prod_overlay_of_294d929_is_unschedulable(tmp_path):
    """Negative control: no pod matches both terms, so nothing counts, and the job's pod does not match the
    model server's term itself, so the first-pod exemption does not apply: every Job stays Pending."""
    docs = render_variant(tmp_path, OLD_SAME_NODE)
    terms = pod_spec(one(docs, "CronJob", "nlu-ci"))["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert len(terms) == 2
    stuck = sim.unschedulable(docs)
    assert "nlu-ci-run0-pod (CronJob/nlu-ci) has no node after nothing" in stuck
    # stuck whatever runs already: with the model server (and everything else) placed first, too
    assert any(s.startswith("nlu-ci-run0-pod") and "nlu-ci-model-server-old-0@" in s for s in stuck)
    assert not any(s.startswith(("rasa-nlu", "nlu-ci-model-server", "pushgateway")) for s in stuck)


def model_server_only(tmp_path, strategy: str) -> list[dict]:
    """k8s/ + components/serving without same-node: the PVC and the model server Deployment, as a rollout."""
    docs = render_variant(tmp_path, """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: nlu-ci
resources: [{k8s}/base, {k8s}/base/job]
components: [{k8s}/components/serving]
""")
    keep = [d for d in docs if (d["kind"], d["metadata"]["name"]) in {
        ("PersistentVolumeClaim", "nlu-ci-models"), ("Deployment", "nlu-ci-model-server")}]
    assert len(keep) == 2
    if strategy != "as shipped":
        one(keep, "Deployment")["spec"]["strategy"] = {"type": strategy}
    return keep


def test_the_model_server_rolls_with_recreate_because_its_volume_is_read_write_once(tmp_path):
    assert one(model_server_only(tmp_path, "as shipped"), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert sim.unschedulable(model_server_only(tmp_path, "as shipped")) == []
    # a rolling update starts the new pod beside the old one: on another node it can never attach the volume
    stuck = sim.unschedulable(model_server_only(tmp_path, "RollingUpdate"))
    assert any(s.startswith("nlu-ci-model-server-new-1") for s in stuck), stuck


# ---------------------------------------------------------------------------- the simulator's rules

NS = "nlu-ci"


def pod(name: str, labels: dict | None = None, **spec) -> Pod:
    return Pod(name, NS, labels or {}, spec, f"Pod/{name}")


def term(key: str = HOSTNAME, **match) -> dict:
    return {"topologyKey": key, "labelSelector": {"matchLabels": match}}


def affinity(*terms, anti: bool = False) -> dict:
    return {"podAntiAffinity" if anti else "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def feasible(p: Pod, placed=(), nodes=None, access=None) -> list[str]:
    cluster = sim.Cluster(nodes or sim.three_nodes(), access or {}, {NS: {"kubernetes.io/metadata.name": NS}})
    return [n.name for n in cluster.feasible(p, tuple(placed))]


N0, N1, N2 = sim.three_nodes()


def test_affinity_counts_an_existing_pod_only_when_it_matches_all_terms():
    both = pod("x", affinity=affinity(term(app="a"), term(role="r")))
    only_a, only_r = pod("a", {"app": "a"}), pod("r", {"role": "r"})
    # one pod matching each term, on the same node: neither counts
    assert feasible(both, [(only_a, N0), (only_r, N0)]) == []
    a_and_r = pod("ar", {"app": "a", "role": "r"})
    assert feasible(both, [(a_and_r, N1)]) == ["node-1"]


def test_first_pod_of_a_series_passes_only_when_it_matches_all_its_own_terms():
    self_matching = pod("j", {"app": "j"}, affinity=affinity(term(app="j")))
    assert feasible(self_matching) == ["node-0", "node-1", "node-2"]
    half = pod("j", {"app": "j"}, affinity=affinity(term(app="j"), term(app="server")))
    assert feasible(half) == []
    # once a matching pod exists anywhere, the exemption is gone: only its node
    assert feasible(self_matching, [(pod("j0", {"app": "j"}), N2)]) == ["node-2"]
    # an existing pod matching all terms, but the node lacks the topology key: counts nowhere, exemption gone too
    bare = Node("bare", {})
    assert feasible(self_matching, [(pod("j0", {"app": "j"}), bare)], nodes=[N0, bare]) == ["node-0"]


def test_affinity_terms_look_in_the_pods_own_namespace_unless_told():
    p = pod("j", {"app": "j"}, affinity=affinity(term(app="server")))
    elsewhere = Pod("s", "other", {"app": "server"}, {}, "Pod/s")
    assert feasible(p, [(elsewhere, N0)]) == []
    anywhere = pod("j", {"app": "j"}, affinity=affinity({**term(app="server"), "namespaceSelector": {}}))
    assert feasible(anywhere, [(elsewhere, N0)]) == ["node-0"]


def test_anti_affinity_both_ways():
    spread = pod("w", {"app": "w"}, affinity=affinity(term(app="w"), anti=True))
    assert feasible(spread, [(pod("w0", {"app": "w"}), N0)]) == ["node-1", "node-2"]
    # an existing pod's anti-affinity keeps a matching newcomer off its node, whatever the newcomer says
    assert feasible(pod("w", {"app": "w"}), [(spread, N1)]) == ["node-0", "node-2"]
    zone = pod("z", {"app": "z"}, affinity=affinity(term(sim.ZONE, app="z"), anti=True))
    same_zone = Node.make("node-9", zone=N0.labels[sim.ZONE])
    assert feasible(zone, [(pod("z0", {"app": "z"}), N0)], nodes=[N0, N1, same_zone]) == ["node-1"]


def test_node_selector_node_affinity_and_taints():
    gpu = Node.make("gpu", labels={"gpu": "yes"}, taints=({"key": "gpu", "value": "yes", "effect": "NoSchedule"},))
    nodes = [N0, gpu]
    assert feasible(pod("p"), nodes=nodes) == ["node-0"]
    tolerant = pod("p", tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}])
    assert feasible(tolerant, nodes=nodes) == ["node-0", "gpu"]
    assert feasible(pod("p", tolerations=[{"operator": "Exists"}]), nodes=nodes) == ["node-0", "gpu"]
    assert feasible(pod("p", tolerations=[{"key": "gpu", "value": "no"}]), nodes=nodes) == ["node-0"]
    prefer_only = Node.make("soft", taints=({"key": "x", "effect": "PreferNoSchedule"},))
    assert feasible(pod("p"), nodes=[prefer_only]) == ["soft"]
    assert feasible(pod("p", nodeSelector={"gpu": "yes"}, tolerations=[{"operator": "Exists"}]), nodes=nodes) == ["gpu"]
    required = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]}}}
    assert feasible(pod("p", affinity=required, tolerations=[{"operator": "Exists"}]), nodes=nodes) == ["node-0"]


def spread_pod(name: str, revision: str = "r1", **constraint) -> Pod:
    c = {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "web"}}, **constraint}
    return pod(name, {"app": "web", "pod-template-hash": revision}, topologySpreadConstraints=[c])


def test_topology_spread_max_skew_and_its_policies():
    assert feasible(spread_pod("c"), [(spread_pod("a"), N0), (spread_pod("b"), N1)]) == ["node-2"]
    assert feasible(spread_pod("c", maxSkew=2), [(spread_pod("a"), N0), (spread_pod("b"), N1)]) == [
        "node-0", "node-1", "node-2"]
    anyway = spread_pod("c", whenUnsatisfiable="ScheduleAnyway")
    assert feasible(anyway, [(spread_pod("a"), N0), (spread_pod("b"), N1), (spread_pod("b2"), N2),
                             (spread_pod("d"), N0)]) == ["node-0", "node-1", "node-2"]
    cp, w1, w2 = control_plane_and_two_workers()
    placed = [(spread_pod("a"), w1), (spread_pod("b"), w2)]
    # the tainted control plane is a domain with 0 pods unless nodeTaintsPolicy is Honor
    assert feasible(spread_pod("c", tolerations=[]), placed, nodes=[cp, w1, w2]) == []
    assert feasible(spread_pod("c", nodeTaintsPolicy="Honor"), placed, nodes=[cp, w1, w2]) == ["worker-1", "worker-2"]
    # matchLabelKeys: the surge pod of a new revision is not counted against the old ones
    assert feasible(spread_pod("n", "r2", matchLabelKeys=["pod-template-hash"]), [
        (spread_pod("a"), N0), (spread_pod("b"), N0)]) == ["node-0", "node-1", "node-2"]
    with pytest.raises(sim.Unsupported):
        feasible(spread_pod("c", minDomains=3))


def test_a_read_write_once_claim_is_no_filter_but_a_pod_on_another_node_never_attaches():
    vol = [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]
    holder = pod("h", volumes=vol)
    everywhere = ["node-0", "node-1", "node-2"]
    assert feasible(pod("p", volumes=vol), [(holder, N1)], access={(NS, "data"): ["ReadWriteOnce"]}) == everywhere
    assert feasible(pod("p", volumes=vol), [(holder, N1)], access={(NS, "data"): ["ReadWriteOncePod"]}) == []
    for modes, stuck_on in ((["ReadWriteOnce"], {"node-0", "node-2"}), (["ReadWriteMany"], set())):
        cluster = sim.Cluster(sim.three_nodes(), {(NS, "data"): modes}, {})
        stuck = cluster.stuck([holder, pod("p", volumes=vol)])
        after_h1 = {s.split(" bound to ")[1].split()[0] for s in stuck if s.endswith("after h@node-1")}
        assert after_h1 == stuck_on, stuck
        assert all("Multi-Attach" in s for s in stuck)
    with pytest.raises(sim.Unsupported):
        feasible(pod("p", volumes=vol))


def test_stuck_explores_every_order_and_every_node_choice():
    """b has a required anti-affinity to a: whichever starts first, the other one is left no node."""
    cluster = sim.Cluster(sim.three_nodes()[:1], {}, {})
    a = pod("a", {"app": "a"})
    b = pod("b", affinity=affinity(term(app="a"), anti=True))
    assert cluster.stuck([a]) == [] and cluster.stuck([b]) == []
    stuck = cluster.stuck([a, b])
    assert "b (Pod/b) has no node after a@node-0" in stuck
    assert "a (Pod/a) has no node after b@node-0" in stuck  # the existing pod's anti-affinity
