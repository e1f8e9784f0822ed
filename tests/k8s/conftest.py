from __future__ import annotations

import pytest

from .fake_apiserver import FakeApiServer

NS = "nlu-ci"


@pytest.fixture
def apiserver():
    server = FakeApiServer().start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(apiserver, tmp_path, monkeypatch):
    """KUBECONFIG pointing at the fake API server; no in-cluster or downward-API variables leak in."""
    path = apiserver.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    monkeypatch.setenv("KUBECONFIG", str(path))
    for var in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAME", "POD_NAMESPACE", "POD_UID",
                "JOB_NAME", "JOB_UID", "NLU_CI_KUBERNETES"):
        monkeypatch.delenv(var, raising=False)
    return path
