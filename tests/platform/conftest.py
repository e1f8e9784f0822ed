"""Fixtures for the Rasa Platform tests: the fake platform server, a trained model, a fast client."""
from __future__ import annotations

from pathlib import Path

import pytest
from platform_helpers import TOKEN, held_out, sample_data, train_model

from fakes.platform_server import FakePlatform


@pytest.fixture
def fake(tmp_path: Path):
    data = sample_data()
    platform = FakePlatform(token=TOKEN, data=data, held_out=held_out(data["rasa_nlu_data"]["common_examples"]),
                            workdir=tmp_path / "platform")
    (tmp_path / "platform").mkdir()
    with platform:
        yield platform


@pytest.fixture
def client(fake: FakePlatform):
    from nlu_ci.registry.platform import PlatformClient

    c = PlatformClient(fake.url, TOKEN, timeout=2, retries=3, eval_timeout=30, poll_interval=0.05, backoff=0.01)
    c.slept = []
    c._sleep = c.slept.append  # record the waits instead of sleeping (backoff values are asserted)
    return c


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A real rasa_nlu model (trained once per session), in a folder named like a store model."""
    import shutil

    base = tmp_path_factory.mktemp("trained")
    model = train_model(base / "t")
    named = base / "model_20260101-000000"
    shutil.copytree(model, named)
    return named
