"""Helpers and fixtures for the Rasa Platform tests.

No conftest.py here on purpose: tests/conftest.py is imported as the module ``conftest`` by the other
suites, and a second rootless ``conftest`` would replace it when several folders are collected at once.
The test modules import the fixtures they use from here.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # tests/ → ``fakes``

from fakes.platform_server import FakePlatform  # noqa: E402
from nluci_testing import FAST_CONFIG, SAMPLE, cli_env, run_cli, shuffled_train_labels  # noqa: E402,F401

TOKEN = "tok-3f9a1c77e2b54d08a6"
TEST_FRACTION = 0.2
SALT = "nlu-ci"


def sample_data() -> dict:
    return json.loads(SAMPLE.read_text())


def held_out(examples: list[dict]) -> list[dict]:
    """The examples the job's hash split puts in TEST: the platform's own held-out data is the same set."""
    from nlu_ci.dataset import hash_unit

    return [e for e in examples if hash_unit(e["text"], SALT) < TEST_FRACTION]


def train_model(out_dir: Path, examples: list[dict] | None = None) -> Path:
    from rasa_nlu.training_data import load_data

    from nlu_ci.engine.training import train

    data = sample_data()
    if examples is not None:
        data["rasa_nlu_data"]["common_examples"] = examples
    out_dir.mkdir(parents=True, exist_ok=True)
    data_file = out_dir.parent / f"{out_dir.name}-data.json"
    data_file.write_text(json.dumps(data))
    config = out_dir.parent / f"{out_dir.name}-config.yml"
    config.write_text(FAST_CONFIG)
    return train(config, load_data(str(data_file)), out_dir / "model")


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
