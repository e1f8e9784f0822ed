from __future__ import annotations

import pytest

from support.kube_fake import FakeApiServer

NS = "nlu-ci"


@pytest.fixture(scope="session")
def nlu_ci_image():
    """(buildah, revision) of the image built once per session (support/image.py; buildah's layer cache)."""
    from support.image import build_image

    return build_image()


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


@pytest.fixture(autouse=True)
def close_sessions(monkeypatch):
    """Stop every session's Lease renewal thread when its test ends (no renewals against dead servers)."""
    from nlu_ci import kube

    sessions = []
    real_init = kube.KubeSession.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        sessions.append(self)

    monkeypatch.setattr(kube.KubeSession, "__init__", init)
    yield
    for session in sessions:
        session.close()
