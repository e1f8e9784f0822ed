"""Jobs for the fake API server (``kube_fake.FakeApiServer``): ``batch/v1`` jobs create/get, ``v1`` pods list
(``labelSelector``), and a small Job controller + kubelet for Indexed Jobs that runs each index's container
command through a callback (tests run it as the manifest says, with the worktree's python).

Faithful to Kubernetes on what nlu-ci relies on:
* create is validated like ``pkg/apis/batch/validation/validation.go`` (``validateJobSpec``): restartPolicy
  ``OnFailure``/``Never``; ``completionMode: Indexed`` requires ``completions``; ``backoffLimitPerIndex``
  requires Indexed; ``maxFailedIndexes`` requires ``backoffLimitPerIndex`` and is at most ``completions``;
  ``podFailurePolicy`` requires restartPolicy ``Never``; the ``FailIndex`` action requires
  ``backoffLimitPerIndex``; the name is a label value (at most 63 characters); 422 Invalid otherwise.
* the controller (docs: concepts/workloads/controllers/job.md, "Completion mode", "Backoff limit per index",
  "Pod failure policy"): one pod per index, at most ``parallelism`` at once, the index in the annotation and
  label ``batch.kubernetes.io/job-completion-index`` and the env ``JOB_COMPLETION_INDEX``, the pod's labels
  ``batch.kubernetes.io/job-name``/``job-name``/``controller-uid``; an index failing more than
  ``backoffLimitPerIndex`` times (or at once by a ``FailIndex`` rule) is failed; more failed indexes than
  ``maxFailedIndexes`` fail the Job (reason ``MaxFailedIndexesExceeded``), failed indexes at the end fail it
  (``FailedIndexes``), else ``Complete``; ``status.completedIndexes``/``failedIndexes`` as interval strings.
* the kubelet's termination message (docs: tasks/debug/debug-application/determine-reason-pod-failure.md):
  the file at ``terminationMessagePath`` after the container ends, at most 4096 bytes, in
  ``status.containerStatuses[].state.terminated.message``.
"""
from __future__ import annotations

import copy
import secrets
import threading
from collections.abc import Callable

MESSAGE_LIMIT = 4096


def _intervals(indexes: list[int]) -> str:
    out, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
        else:
            if run:
                out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def validate_job(body: dict) -> list[str]:
    problems = []
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    name = meta.get("name") or ""
    if not name or len(name) > 63:
        problems.append(f"metadata.name: Invalid value: {name!r}: must be no more than 63 characters")
    pod = (spec.get("template") or {}).get("spec") or {}
    restart = pod.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        problems.append(f'spec.template.spec.restartPolicy: Unsupported value: "{restart}": supported values: '
                        '"OnFailure", "Never"')
    indexed = spec.get("completionMode") == "Indexed"
    if indexed and spec.get("completions") is None:
        problems.append("spec.completions: Required value: when completion mode is Indexed")
    if spec.get("backoffLimitPerIndex") is not None and not indexed:
        problems.append("spec.backoffLimitPerIndex: Invalid value: requires indexed completion mode")
    if spec.get("maxFailedIndexes") is not None:
        if spec.get("backoffLimitPerIndex") is None:
            problems.append("spec.maxFailedIndexes: Invalid value: requires the backoffLimitPerIndex to be set")
        elif spec.get("completions") is not None and spec["maxFailedIndexes"] > spec["completions"]:
            problems.append("spec.maxFailedIndexes: Invalid value: must be less than or equal to completions")
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        if restart != "Never":
            problems.append('spec.template.spec.restartPolicy: Invalid value: only "Never" is supported when '
                            "podFailurePolicy is specified")
        for i, rule in enumerate(policy.get("rules") or []):
            if rule.get("action") == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
                problems.append(f'spec.podFailurePolicy.rules[{i}].action: Invalid value: "FailIndex": requires '
                                "the backoffLimitPerIndex to be set")
    return problems


class JobsApi:
    """Mixed into FakeApiServer: the handlers ``_jobs_create``, ``_jobs_get``, ``_pods_list``."""

    run_container: Callable[[dict, dict], tuple[int, bytes]] | None = None  # (pod, container) -> (exit code, file)

    def _jobs_create(self, namespace, name, body, headers):
        from support.kube_fake import ApiError

        problems = validate_job(body or {})
        if problems:
            raise ApiError(422, "Invalid", f'Job.batch "{(body or {}).get("metadata", {}).get("name")}" is invalid: '
                           + "; ".join(problems))
        job = copy.deepcopy(body)
        meta = job["metadata"]
        if ("jobs", namespace, meta["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", f'jobs.batch "{meta["name"]}" already exists')
        meta.update(namespace=namespace, uid=secrets.token_hex(16), resourceVersion=self._next_rv())
        job["status"] = {"active": 0, "succeeded": 0, "failed": 0}
        self.objects[("jobs", namespace, meta["name"])] = job
        threading.Thread(target=self._control, args=(namespace, meta["name"]), daemon=True).start()
        return 201, job

    def _jobs_get(self, namespace, name, body, headers):
        obj = self.objects.get(("jobs", namespace, name))
        if obj is None:
            raise self._missing("batch", "jobs", name)
        return 200, copy.deepcopy(obj)

    def _pods_list(self, namespace, name, body, headers):
        wanted = dict(p.split("=", 1) for p in (self._query.get("labelSelector") or "").split(",") if "=" in p)
        items = [copy.deepcopy(o) for (r, ns, _n), o in list(self.objects.items()) if r == "pods" and ns == namespace
                 and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}

    # ------------------------------------------------------------- controller + kubelet

    def _pod_for(self, job: dict, index: int, attempt: int) -> dict:
        meta, spec = job["metadata"], job["spec"]
        template = copy.deepcopy(spec["template"])
        name = f"{meta['name']}-{index}-{secrets.token_hex(3)}"
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels.update({"batch.kubernetes.io/job-name": meta["name"], "job-name": meta["name"],
                       "batch.kubernetes.io/controller-uid": meta["uid"], "controller-uid": meta["uid"],
                       "batch.kubernetes.io/job-completion-index": str(index)})
        pod_spec = template["spec"]
        pod_spec["hostname"] = f"{meta['name']}-{index}"
        for c in pod_spec["containers"]:
            c["env"] = [*(c.get("env") or []), {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": meta["namespace"], "uid": secrets.token_hex(16),
                             "labels": labels, "annotations": {
                                 "batch.kubernetes.io/job-completion-index": str(index),
                                 "batch.kubernetes.io/job-index-failure-count": str(attempt)},
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "spec": pod_spec, "status": {"phase": "Pending"}}

    def _run_pod(self, namespace: str, pod: dict) -> int:
        container = pod["spec"]["containers"][0]
        pod["status"]["phase"] = "Running"
        code, message = type(self).run_container(pod, container)
        message = message[:MESSAGE_LIMIT].decode("utf-8", "replace")
        pod["status"] = {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
            {"name": container["name"], "state": {"terminated": {"exitCode": code, "message": message,
                                                                 "reason": "Completed" if code == 0 else "Error"}}}]}
        return code

    def _control(self, namespace: str, name: str) -> None:
        job = self.objects[("jobs", namespace, name)]
        spec = job["spec"]
        n, limit = spec["completions"], spec.get("backoffLimitPerIndex", 0)
        max_failed = spec.get("maxFailedIndexes")
        fail_codes = {c for r in (spec.get("podFailurePolicy") or {}).get("rules") or [] if r.get("action") ==
                      "FailIndex" for c in (r.get("onExitCodes") or {}).get("values") or []}
        done, failed, lock = [], [], threading.Lock()
        todo = list(range(n))

        def work():
            while True:
                with lock:
                    if not todo or (max_failed is not None and len(failed) > max_failed):
                        return
                    index = todo.pop(0)
                for attempt in range(limit + 1):
                    pod = self._pod_for(job, index, attempt)
                    with self._lock:
                        self.objects[("pods", namespace, pod["metadata"]["name"])] = pod
                    code = self._run_pod(namespace, pod)
                    if code == 0 or code in fail_codes:
                        break
                with lock, self._lock:
                    (done if code == 0 else failed).append(index)
                    job["status"].update(completedIndexes=_intervals(done), failedIndexes=_intervals(failed),
                                         succeeded=len(done), failed=job["status"]["failed"] + (code != 0))

        threads = [threading.Thread(target=work, daemon=True) for _ in range(min(spec.get("parallelism") or 1, n))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if max_failed is not None and len(failed) > max_failed:
            cond = {"type": "Failed", "status": "True", "reason": "MaxFailedIndexesExceeded",
                    "message": "Job has exceeded the specified maximal number of failed indexes"}
        elif failed:
            cond = {"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "Job has failed indexes"}
        else:
            cond = {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods"}
        with self._lock:
            job["status"]["conditions"] = [cond]
