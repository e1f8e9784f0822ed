"""Jobs and their pods (the cv search's Indexed Job, ``search/indexed.py``): create a Job, read it back, list
its pods. RBAC: ``jobs`` create/get (batch) and ``pods`` get/list in the run's namespace
(k8s/components/parallel-search adds them to the Role)."""
from __future__ import annotations

from nlu_ci.kube.api import ApiException, _failure

JOBS_NEED = "create/get on jobs (batch) in its namespace: k8s/components/parallel-search"
PODS_NEED = "get/list on pods in its namespace: k8s/components/parallel-search"


class JobsMixin:
    """Job methods of a KubeSession."""

    def create_job(self, body: dict) -> dict:
        try:
            return self._api("POST", f"/apis/batch/v1/namespaces/{self.namespace}/jobs", body)
        except (ApiException, OSError) as err:
            raise _failure(f"cannot create Job {body.get('metadata', {}).get('name')}", err, JOBS_NEED) from None

    def read_job(self, name: str) -> dict:
        try:
            return self._api("GET", f"/apis/batch/v1/namespaces/{self.namespace}/jobs/{name}")
        except (ApiException, OSError) as err:
            raise _failure(f"cannot read Job {name}", err, JOBS_NEED) from None

    def read_own_pod(self) -> dict | None:
        """This run's own pod (its image is the one the fold pods run), or None outside a pod."""
        if not self.pod_name:
            return None
        try:
            return self._api("GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}")
        except (ApiException, OSError) as err:
            raise _failure(f"cannot read pod {self.pod_name}", err, PODS_NEED) from None

    def list_pods(self, label_selector: str) -> list[dict]:
        try:
            answer = self._api("GET", f"/api/v1/namespaces/{self.namespace}/pods",
                               query=[("labelSelector", label_selector)])
        except (ApiException, OSError) as err:
            raise _failure(f"cannot list pods {label_selector}", err, PODS_NEED) from None
        return list(answer.get("items") or [])
