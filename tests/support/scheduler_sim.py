"""A placement check for rendered manifests, faithful to kube-scheduler's filters for what nlu-ci uses.

Every pod a workload makes (a CronJob's Job pods, a Deployment's replicas and its rolling-update surge) is
placed on a simulated cluster in **every start order and on every node the filters allow** (the scheduler's
scoring picks one of the feasible nodes; which one is not ours to assume). A workload set *places* when no
such sequence leaves a pod with no feasible node. The filters, each as kube-scheduler (or the volume
attach/detach controller) applies it:

- **Inter-pod affinity** (``pkg/scheduler/framework/plugins/interpodaffinity/filtering.go``, read for this
  module in its current form, ``satisfyPodAffinity`` and friends, and in the 1.18 one; the rules below are
  the same in both):
  * an existing pod counts for the incoming pod's required affinity only when it matches **all** its
    required affinity terms (``updateWithAffinityTerms`` -> ``podMatchesAllAffinityTerms``); its node's
    value of every term's topologyKey then counts;
  * a node passes the affinity when it has every term's topologyKey (else it fails, whatever follows) and
    each (key, value) pair counts at least one such pod (``satisfyPodAffinity``);
  * otherwise the pod may be *the first pod of a series*: it passes only when no existing pod anywhere
    matches all the terms (the count map is empty) **and** the pod matches all its own terms
    (``podMatchesAllAffinityTerms(terms, pod)``);
  * required anti-affinity: a node fails when any term's (topologyKey, node value) pair counts an existing
    pod matching that term (``satisfyPodAntiAffinity``), and when an existing pod's anti-affinity term
    matches the incoming pod in a topology the node is in (``satisfyExistingPodsAntiAffinity``);
  * a term's namespaces: its ``namespaces`` plus what ``namespaceSelector`` selects; neither: the pod's own
    namespace. A nil labelSelector matches nothing, ``{}`` everything (``metav1.LabelSelectorAsSelector``).
- **Node selector and required node affinity** (NodeAffinity plugin): ``nodeSelector`` pairs all present;
  ``nodeSelectorTerms`` ORed, the expressions of a term ANDed.
- **Taints and tolerations** (TaintToleration plugin): every ``NoSchedule``/``NoExecute`` taint of the node
  tolerated (``Exists`` with no key tolerates everything; an empty effect matches every effect).
- **Topology spread** (PodTopologySpread plugin, ``whenUnsatisfiable: DoNotSchedule`` only; ``ScheduleAnyway``
  is a score): per constraint, count the existing pods matching the selector (plus ``matchLabelKeys`` with
  the incoming pod's values) in the pod's namespace per domain, over the nodes that pass the pod's node
  selector/affinity (``nodeAffinityPolicy`` Honor, the default) and, with ``nodeTaintsPolicy: Honor``, its
  tolerations (default Ignore: tainted nodes are domains too); the node fails when
  ``count(its domain) + (1 if the pod matches the selector) - min over domains > maxSkew``.
- **ReadWriteOnce claims**: kube-scheduler does not filter on them (its VolumeRestrictions plugin knows
  only ``ReadWriteOncePod`` and a few inline volume types), so it may bind a second pod of an RWO claim to
  another node; the attach/detach controller then never attaches the volume there (Multi-Attach error, the
  pod waits in ContainerCreating for ever). The check lets the scheduler choose such a node and reports the
  pod stuck there. ``ReadWriteOncePod`` is a filter (one pod at all); ``ReadWriteMany``/``ReadOnlyMany``:
  no constraint.

Terminated pods do not count (the scheduler's cache drops them), so the set of pods is the ones alive at the
same time. Fields this module does not model (``minDomains``, pod affinity ``matchLabelKeys``, node
resources) raise :class:`Unsupported` instead of being ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
HARD_TAINT_EFFECTS = ("NoSchedule", "NoExecute")


class Unsupported(ValueError):
    """A field the simulator does not model: failing loudly beats a check that silently ignores it."""


@dataclass(frozen=True)
class Node:
    name: str
    labels: dict = field(default_factory=dict)
    taints: tuple = ()

    @staticmethod
    def make(name: str, zone: str = "zone-a", labels: dict | None = None, taints: tuple = ()) -> Node:
        return Node(name, {HOSTNAME: name, ZONE: zone, "kubernetes.io/os": "linux", **(labels or {})}, taints)


def three_nodes() -> list[Node]:
    """Three untainted workers, one per zone."""
    return [Node.make(f"node-{i}", zone=f"zone-{'abc'[i]}") for i in range(3)]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict
    spec: dict
    owner: str  # "CronJob/nlu-ci": what made it (for messages)


# ---------------------------------------------------------------------------- label selectors

def selector_matches(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return False  # LabelSelectorAsSelector(nil) = labels.Nothing()
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {"In": key in labels and labels[key] in values,
              "NotIn": key not in labels or labels[key] not in values,
              "Exists": key in labels,
              "DoesNotExist": key not in labels}.get(op)
        if ok is None:
            raise Unsupported(f"label selector operator {op}")
        if not ok:
            return False
    return True


def node_term_matches(term: dict, node: Node) -> bool:
    if term.get("matchFields"):
        for expr in term["matchFields"]:
            if expr["key"] != "metadata.name" or expr["operator"] not in ("In", "NotIn"):
                raise Unsupported(f"matchFields {expr}")
            if (node.name in expr["values"]) != (expr["operator"] == "In"):
                return False
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op in ("Gt", "Lt"):
            if key not in node.labels:
                return False
            have, want = int(node.labels[key]), int(values[0])
            if not (have > want if op == "Gt" else have < want):
                return False
        elif not selector_matches({"matchExpressions": [expr]}, node.labels):
            return False
    return True


# ---------------------------------------------------------------------------- node filters

def node_selector_ok(pod: Pod, node: Node) -> bool:
    if any(node.labels.get(k) != v for k, v in (pod.spec.get("nodeSelector") or {}).items()):
        return False
    required = ((pod.spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(node_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    op = toleration.get("operator", "Equal")
    if op == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")


def taints_ok(pod: Pod, node: Node) -> bool:
    tolerations = pod.spec.get("tolerations") or []
    return all(any(tolerates(t, taint) for t in tolerations)
               for taint in node.taints if taint["effect"] in HARD_TAINT_EFFECTS)


# ---------------------------------------------------------------------------- inter-pod affinity

Placed = tuple  # ((Pod, Node), ...)


def term_namespaces(owner: Pod, term: dict, namespace_labels: dict[str, dict]) -> set[str] | None:
    """The namespaces a term covers; None = every namespace (namespaceSelector {})."""
    names = set(term.get("namespaces") or [])
    ns_selector = term.get("namespaceSelector")
    if ns_selector is not None:
        if not ns_selector:
            return None
        names |= {ns for ns, labels in namespace_labels.items() if selector_matches(ns_selector, labels)}
    elif not names:
        names = {owner.namespace}
    return names


def term_matches(owner: Pod, term: dict, target: Pod, namespace_labels: dict) -> bool:
    if term.get("matchLabelKeys") or term.get("mismatchLabelKeys"):
        raise Unsupported("pod affinity matchLabelKeys/mismatchLabelKeys")
    namespaces = term_namespaces(owner, term, namespace_labels)
    return (namespaces is None or target.namespace in namespaces) and selector_matches(
        term.get("labelSelector"), target.labels)


def required_terms(pod: Pod, kind: str) -> list[dict]:
    return ((pod.spec.get("affinity") or {}).get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []


def inter_pod_affinity_ok(pod: Pod, node: Node, placed: Placed, namespace_labels: dict) -> bool:
    # existing pods' anti-affinity against the incoming pod (satisfiesExistingPodsAntiAffinity)
    for other, where in placed:
        for term in required_terms(other, "podAntiAffinity"):
            key = term["topologyKey"]
            if key in where.labels and node.labels.get(key) == where.labels[key] and term_matches(
                    other, term, pod, namespace_labels):
                return False
    affinity = required_terms(pod, "podAffinity")
    if affinity:
        counts: dict[tuple[str, str], int] = {}  # topologyToMatchedAffinityTerms
        for other, where in placed:
            if all(term_matches(pod, t, other, namespace_labels) for t in affinity):  # ALL terms
                for t in affinity:
                    if t["topologyKey"] in where.labels:
                        pair = (t["topologyKey"], where.labels[t["topologyKey"]])
                        counts[pair] = counts.get(pair, 0) + 1
        if not all(t["topologyKey"] in node.labels for t in affinity):
            return False  # "All topology labels must exist on the node", the first pod's included
        if not all(counts.get((t["topologyKey"], node.labels[t["topologyKey"]]), 0) > 0 for t in affinity):
            # the first pod of a series: nothing matches anywhere and the pod matches all its own terms
            if counts or not all(term_matches(pod, t, pod, namespace_labels) for t in affinity):
                return False
    for term in required_terms(pod, "podAntiAffinity"):
        key = term["topologyKey"]
        if key in node.labels and any(where.labels.get(key) == node.labels[key]
                                      and term_matches(pod, term, other, namespace_labels)
                                      for other, where in placed):
            return False
    return True


# ---------------------------------------------------------------------------- topology spread

def _spread_eligibility(pod: Pod, constraint: dict):
    """Which nodes are domains of a spread constraint (nodeAffinityPolicy / nodeTaintsPolicy)."""
    key = constraint["topologyKey"]

    def eligible(n: Node) -> bool:
        if key not in n.labels:
            return False
        if constraint.get("nodeAffinityPolicy", "Honor") == "Honor" and not node_selector_ok(pod, n):
            return False
        return not (constraint.get("nodeTaintsPolicy", "Ignore") == "Honor" and not taints_ok(pod, n))
    return eligible


def spread_ok(pod: Pod, node: Node, placed: Placed, nodes: list[Node]) -> bool:
    for c in pod.spec.get("topologySpreadConstraints") or []:
        if c.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue  # ScheduleAnyway only scores
        if c.get("minDomains") is not None:
            raise Unsupported("topologySpreadConstraints minDomains")
        key, max_skew = c["topologyKey"], int(c["maxSkew"])
        if key not in node.labels:
            return False
        selector = dict(c.get("labelSelector") or {})
        extra = [{"key": k, "operator": "In", "values": [pod.labels[k]]}
                 for k in c.get("matchLabelKeys") or [] if k in pod.labels]
        selector["matchExpressions"] = list(selector.get("matchExpressions") or []) + extra
        eligible = _spread_eligibility(pod, c)
        domains = {n.labels[key]: 0 for n in nodes if eligible(n)}
        for other, where in placed:
            if (other.namespace == pod.namespace and where.labels.get(key) in domains and eligible(where)
                    and selector_matches(selector, other.labels)):
                domains[where.labels[key]] += 1
        if node.labels[key] not in domains:
            return False
        self_match = 1 if selector_matches(selector, pod.labels) else 0
        if domains[node.labels[key]] + self_match - min(domains.values()) > max_skew:
            return False
    return True


# ---------------------------------------------------------------------------- ReadWriteOnce volumes

def claims(pod: Pod) -> list[str]:
    return [v["persistentVolumeClaim"]["claimName"] for v in pod.spec.get("volumes") or []
            if "persistentVolumeClaim" in v]


def claim_users(pod: Pod, claim: str, placed: Placed) -> list[Node]:
    return [where for other, where in placed if other.namespace == pod.namespace and claim in claims(other)]


def modes_of(pod: Pod, claim: str, access_modes: dict) -> list[str]:
    modes = access_modes.get((pod.namespace, claim))
    if modes is None:
        raise Unsupported(f"{pod.owner}: no PersistentVolumeClaim {pod.namespace}/{claim} in the manifests")
    return modes


def read_write_once_pod_ok(pod: Pod, placed: Placed, access_modes: dict) -> bool:
    """The scheduler's VolumeRestrictions filter: a ReadWriteOncePod claim in use admits no other pod."""
    return not any("ReadWriteOncePod" in modes_of(pod, c, access_modes) and claim_users(pod, c, placed)
                   for c in claims(pod))


def multi_attach(pod: Pod, node: Node, placed: Placed, access_modes: dict) -> str | None:
    """After the scheduler bound the pod to `node`: the RWO claim it cannot attach there, if any."""
    for claim in claims(pod):
        if modes_of(pod, claim, access_modes) == ["ReadWriteOnce"] and any(
                where.name != node.name for where in claim_users(pod, claim, placed)):
            return claim
    return None


# ---------------------------------------------------------------------------- the cluster

class _Enough(Exception):
    pass


@dataclass
class Cluster:
    nodes: list[Node]
    access_modes: dict = field(default_factory=dict)      # (namespace, claim) -> accessModes
    namespace_labels: dict = field(default_factory=dict)  # namespace -> labels

    def feasible(self, pod: Pod, placed: Placed) -> list[Node]:
        return [n for n in self.nodes
                if not n.labels.get("node.kubernetes.io/unschedulable")
                and node_selector_ok(pod, n) and taints_ok(pod, n)
                and inter_pod_affinity_ok(pod, n, placed, self.namespace_labels)
                and spread_ok(pod, n, placed, self.nodes)
                and read_write_once_pod_ok(pod, placed, self.access_modes)]

    def stuck(self, pods: list[Pod], limit: int = 20) -> list[str]:
        """Every start order and node choice: one line per way a pod is left with no node, or bound to a node
        where its ReadWriteOnce volume cannot attach (empty: everything places)."""
        seen: set[frozenset] = set()
        found: list[str] = []

        def walk(placed: Placed) -> None:
            key = frozenset((p.name, n.name) for p, n in placed)
            if key in seen:
                return
            seen.add(key)
            done = {p.name for p, _ in placed}
            choices = [(pod, self.feasible(pod, placed)) for pod in pods if pod.name not in done]
            history = ", ".join(f"{p.name}@{n.name}" for p, n in placed) or "nothing"
            going: list[tuple[Pod, Node]] = []
            for pod, nodes in choices:  # every dead end here first: the shortest history is reported first
                if not nodes:
                    found.append(f"{pod.name} ({pod.owner}) has no node after {history}")
                for n in nodes:
                    claim = multi_attach(pod, n, placed, self.access_modes)
                    if claim:
                        found.append(f"{pod.name} ({pod.owner}) bound to {n.name} cannot attach ReadWriteOnce "
                                     f"claim {claim} (Multi-Attach) after {history}")
                    else:
                        going.append((pod, n))
                if len(found) >= limit:
                    raise _Enough
            for pod, n in going:
                walk((*placed, (pod, n)))

        try:
            walk(())
        except _Enough:
            pass
        return found


# ---------------------------------------------------------------------------- from rendered manifests

def cluster_for(docs, nodes: list[Node]) -> Cluster:
    access = {(d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d["spec"]["accessModes"]
              for d in docs if d["kind"] == "PersistentVolumeClaim"}
    namespaces = {d["metadata"]["name"]: {**(d["metadata"].get("labels") or {}),
                                           "kubernetes.io/metadata.name": d["metadata"]["name"]}
                  for d in docs if d["kind"] == "Namespace"}
    return Cluster(nodes, access, namespaces)


def surge(deployment: dict) -> int:
    spec = deployment["spec"]
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") == "Recreate":
        return 0  # the old pods are gone before the new ones are created
    value = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    replicas = int(spec.get("replicas", 1))
    return math.ceil(replicas * int(value[:-1]) / 100) if isinstance(value, str) else int(value)


def pods_of(docs, runs_per_cronjob: int = 2) -> list[Pod]:
    """The pods alive at once: each CronJob's Job pods (the scheduled run and a `kubectl create job --from`
    one), each Deployment's replicas plus its rolling-update surge (a new pod-template-hash)."""
    pods: list[Pod] = []
    for d in docs:
        meta, ns = d["metadata"], d["metadata"].get("namespace", "default")
        if d["kind"] == "CronJob":
            template = d["spec"]["jobTemplate"]["spec"]["template"]
            for i in range(runs_per_cronjob):
                job = f"{meta['name']}-run{i}"
                labels = {**(template["metadata"].get("labels") or {}), "batch.kubernetes.io/job-name": job,
                          "job-name": job, "batch.kubernetes.io/controller-uid": f"uid-{job}"}
                pods.append(Pod(f"{job}-pod", ns, labels, template["spec"], f"CronJob/{meta['name']}"))
        elif d["kind"] == "Deployment":
            template = d["spec"]["template"]
            replicas = int(d["spec"].get("replicas", 1))
            for i in range(replicas + surge(d)):
                revision = "old" if i < replicas else "new"
                labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": revision}
                pods.append(Pod(f"{meta['name']}-{revision}-{i}", ns, labels, template["spec"],
                                f"Deployment/{meta['name']}"))
        elif d["kind"] in ("StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet"):
            raise Unsupported(f"{d['kind']} {meta['name']}: not modelled")
    return pods


def unschedulable(docs, nodes: list[Node] | None = None) -> list[str]:
    """Why the rendered manifests cannot all be placed on `nodes` (default: three workers); empty: they can."""
    return Cluster.stuck(cluster_for(docs, nodes or three_nodes()), pods_of(docs))
