"""Where the cv search runs: forked processes on this pod (default), or the indexes of a Kubernetes Indexed Job
(``--cv-job-template``: k8s/components/parallel-search). Either way the report's ``cv_search`` section."""
from __future__ import annotations

from nlu_ci import cpus
from nlu_ci.errors import ConfigError
from nlu_ci.job.search import cv, folds


def run(job, configs, data) -> dict:
    settings = job.settings
    k = settings.cv_folds
    folds.check_k(k, data)  # DataError (exit 2) before anything is trained
    if settings.cv_job_template:
        from nlu_ci.job.search import indexed

        if job.lock.kube is None:
            raise ConfigError("--cv-job-template / NLU_CI_CV_JOB_TEMPLATE: needs the Kubernetes API (in a cluster, "
                              "or NLU_CI_KUBERNETES=on with a kubeconfig)")
        return indexed.search(job.lock.kube, settings, configs, data, job.stamp)
    return cv.search(configs, data, k, settings.split_salt, cpus.workers(), job.tmp)
