"""The cv search as a Kubernetes Indexed Job (k8s/components/parallel-search): the CronJob's pod creates one
Job whose index ``i`` runs ``nlu-ci cv-fold`` (config ``i // K``, fold ``i % K``), waits for it, and reads each
index's result back from its pod's termination message, through the API. The fold pods never mount the
model store (ReadWriteOnce): they read the data from git as the run does; each result carries a key of the
training side it was computed on (``cv.data_key``), and a result from other data fails the run.

The Job is made from ``--cv-job-template`` (a Job manifest, the component's ConfigMap) with: its name,
``completions`` = configs x K, ``parallelism`` at most that, ``completionMode: Indexed``, the run's cv settings
in the container's env, the image, envFrom and shared volumes of this run's own pod, ``activeDeadlineSeconds`` from
``--cv-job-timeout``, and this run's Job as owner (deleted with it). Kubernetes' own documentation:
https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode (the index in the annotation
``batch.kubernetes.io/job-completion-index`` and ``JOB_COMPLETION_INDEX``), #backoff-limit-per-index, and
https://kubernetes.io/docs/tasks/debug/debug-application/determine-reason-pod-failure/ (termination messages).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import time

from nlu_ci.errors import ConfigError, RuntimeFailure
from nlu_ci.job.search import cv
from nlu_ci.yamlfile import read_yaml

log = logging.getLogger(__name__)
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
POLL_SECONDS = 2.0


def read_template(path) -> dict:
    raw, _ = read_yaml(path, "cv job template")
    spec = raw.get("spec") if isinstance(raw, dict) else None
    pod = (spec or {}).get("template", {}).get("spec") if isinstance(spec, dict) else None
    if not isinstance(raw, dict) or raw.get("kind") != "Job" or not isinstance(pod, dict) or not pod.get("containers"):
        raise ConfigError(f"{path}: a cv job template is a batch/v1 Job with spec.template.spec.containers")
    if any("persistentVolumeClaim" in v for v in pod.get("volumes") or []):
        raise ConfigError(f"{path}: the cv job's pods must not mount a PersistentVolumeClaim (the model store is "
                          "ReadWriteOnce)")
    return raw


def job_body(template: dict, settings, n_configs: int, name: str, own_pod: dict | None, owner: dict | None) -> dict:
    """The Job to create. From the run's own pod: its image, its envFrom and the volumes the template names
    alike (the generated ConfigMaps' names carry kustomize's hash, which a template in a ConfigMap cannot
    know); never a PersistentVolumeClaim."""
    body = copy.deepcopy(template)
    tasks = settings.cv_folds * n_configs
    meta = body.setdefault("metadata", {})
    meta["name"] = name
    meta.setdefault("labels", {})["nlu-ci.rasa.com/cv-search"] = name
    if owner:
        meta["ownerReferences"] = [owner]
    spec = body["spec"]
    spec.update(completions=tasks, completionMode="Indexed",
                parallelism=min(int(spec.get("parallelism") or tasks), tasks),
                activeDeadlineSeconds=int(settings.cv_job_timeout))
    pod_spec = spec["template"]["spec"]
    container = pod_spec["containers"][0]
    own = (own_pod or {}).get("spec") or {}
    own_container = (own.get("containers") or [{}])[0]
    if own_container.get("image"):
        container["image"] = own_container["image"]
    if own_container.get("envFrom"):
        container["envFrom"] = own_container["envFrom"]
    own_volumes = {v.get("name"): v for v in own.get("volumes") or [] if "persistentVolumeClaim" not in v}
    pod_spec["volumes"] = [own_volumes.get(v.get("name"), v) for v in pod_spec.get("volumes") or []]
    env = [e for e in container.get("env") or [] if e.get("name") not in ENV_SET]
    env += [{"name": k, "value": v} for k, v in _env(settings).items()]
    container["env"] = env
    return body


ENV_SET = {"NLU_CI_CV_FOLDS", "NLU_CI_CONFIG", "NLU_CI_SPLIT_SALT", "NLU_CI_TEST_FRACTION", "NLU_CI_MAX_REPAIR_SHARE"}


def _env(settings) -> dict[str, str]:
    return {"NLU_CI_CV_FOLDS": str(settings.cv_folds), "NLU_CI_CONFIG": ",".join(str(c) for c in settings.configs),
            "NLU_CI_SPLIT_SALT": settings.split_salt, "NLU_CI_TEST_FRACTION": repr(settings.test_fraction),
            "NLU_CI_MAX_REPAIR_SHARE": repr(settings.max_repair_share)}


def wait(kube, name: str, timeout: float) -> dict:
    """The Job once a Complete or Failed condition is true; a RuntimeFailure when it failed or took too long."""
    deadline = time.monotonic() + timeout
    while True:
        job = kube.read_job(name)
        for cond in (job.get("status") or {}).get("conditions") or []:
            if cond.get("status") != "True":
                continue
            if cond.get("type") == "Complete":
                return job
            if cond.get("type") == "Failed":
                failed = (job.get("status") or {}).get("failedIndexes")
                raise RuntimeFailure(f"cv search Job {name} failed: {cond.get('reason')}: {cond.get('message')}"
                                     + (f" (failed indexes {failed})" if failed else ""))
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"cv search Job {name} did not finish within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def results(kube, name: str, tasks: int, container: str, key: str) -> list[dict]:
    """Each index's result from the termination message of its succeeded pod, in index order."""
    found: dict[int, dict] = {}
    for pod in kube.list_pods(f"{JOB_NAME_LABEL}={name}"):
        if (pod.get("status") or {}).get("phase") != "Succeeded":
            continue
        index = int(((pod.get("metadata") or {}).get("annotations") or {}).get(INDEX_ANNOTATION, -1))
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            message = ((status.get("state") or {}).get("terminated") or {}).get("message")
            if status.get("name") == container and message:
                try:
                    row = json.loads(message)
                except ValueError:
                    raise RuntimeFailure(f"cv search Job {name}: index {index}'s termination message is not "
                                         "JSON") from None
                if row.get("index") != index:
                    raise RuntimeFailure(f"cv search Job {name}: pod of index {index} reports index {row.get('index')}")
                if row.get("data_key") != key:
                    raise RuntimeFailure(f"cv search Job {name}: index {index} trained on other data than this run "
                                         f"(data key {row.get('data_key')} vs {key}): did the data change meanwhile?")
                found[index] = row
    missing = [i for i in range(tasks) if i not in found]
    if missing:
        raise RuntimeFailure(f"cv search Job {name}: no result for indexes {missing[:10]}")
    return [found[i] for i in range(tasks)]


def search(kube, settings, configs, data, stamp: str) -> dict:
    t0 = time.perf_counter()
    template = read_template(settings.cv_job_template)
    pod = kube.read_own_pod()
    owner = ({"apiVersion": "batch/v1", "kind": "Job", "name": settings.job_name, "uid": settings.job_uid,
              "blockOwnerDeletion": False} if settings.job_name and settings.job_uid else None)
    name = f"nlu-ci-cv-{hashlib.sha256(f'{settings.project}:{stamp}'.encode()).hexdigest()[:10]}"
    body = job_body(template, settings, len(configs), name, pod, owner)
    kube.create_job(body)
    log.info("cv search: created Indexed Job %s (%d indexes, parallelism %d)", name, body["spec"]["completions"],
             body["spec"]["parallelism"])
    wait(kube, name, settings.cv_job_timeout + 60)
    container = body["spec"]["template"]["spec"]["containers"][0]["name"]
    rows = results(kube, name, body["spec"]["completions"], container, cv.data_key(data, settings.cv_folds,
                                                                                   settings.split_salt))
    found = cv.section(configs, rows, settings.cv_folds, time.perf_counter() - t0, body["spec"]["parallelism"],
                       "kubernetes-job")
    found["job"] = name
    return found
