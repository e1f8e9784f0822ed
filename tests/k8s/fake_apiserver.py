"""Kept only for test modules that still import it: the fake API server lives in support.kube_fake.
Remove once nothing imports this module."""
from support.kube_fake import MICROTIME, ApiError, FakeApiServer, deployment, job_pod  # noqa: F401
