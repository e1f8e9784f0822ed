"""Kubernetes API from inside the job: a Lease lock (``lease``), Events on the Job (``events``), a rollout
restart (``restart``), over one connection (``api``, ``session.connect``).

Only used in a cluster (auto-detected from the service account; ``--kubernetes on|off|auto``).
"""
from nlu_ci.kube.api import RESTARTED_AT, ApiException, in_cluster, microtime
from nlu_ci.kube.restart import parse_deployment_ref, restart_after_promotion
from nlu_ci.kube.session import KubeSession, connect

__all__ = ["RESTARTED_AT", "ApiException", "KubeSession", "connect", "in_cluster", "microtime",
           "parse_deployment_ref", "restart_after_promotion"]
