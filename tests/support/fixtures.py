"""The pytest fixtures every suite shares (registered once, in tests/conftest.py).

Servers: ``pushgateway`` / ``slack`` / ``prometheus_stack`` are fresh for each test; ``shared_pushgateway`` /
``shared_slack`` live for the session (suites whose cases keep apart by project, e.g. reliability).
Platform: ``fake`` (the platform stand-in with the sample data), ``client`` (a PlatformClient on it that
records its waits instead of sleeping), ``trained_model`` (a real model, trained once a session).
CLI: ``fast_config``, ``sample_examples``, ``cli(args, **env)``, ``any_pipeline`` (a test taking it runs with
the fast test pipeline and with the shipped nlu_config.yml)."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.data import CONFIG, FAST_CONFIG, CliResult, cli_env, held_out, load_sample, run_cli
from support.platform_fake import FakePlatform
from support.servers import MISSING, PROMETHEUS_BIN, PUSHGATEWAY_BIN, Prometheus, Pushgateway
from support.slack_fake import SlackReceiver
from support.train import train

PLATFORM_TOKEN = "tok-3f9a1c77e2b54d08a6"

__all__ = ["PLATFORM_TOKEN", "any_pipeline", "cli", "client", "fake", "fast_config", "prometheus_stack", "pushgateway",
           "sample_examples", "shared_pushgateway", "shared_slack", "slack", "trained_model"]


# ---------------------------------------------------------------- servers

@contextlib.contextmanager
def running_pushgateway(workdir: Path) -> Iterator[Pushgateway]:
    if PUSHGATEWAY_BIN is None:
        pytest.skip(f"prometheus-pushgateway {MISSING}")
    server = Pushgateway(workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pushgateway(tmp_path: Path):
    with running_pushgateway(tmp_path / "pushgateway") as server:
        yield server


@pytest.fixture(scope="session")
def shared_pushgateway(tmp_path_factory):
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as server:
        yield server


@pytest.fixture
def slack():
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def shared_slack():
    with SlackReceiver() as receiver:
        yield receiver


@pytest.fixture
def prometheus_stack(tmp_path: Path):
    """(pushgateway, prometheus): Prometheus scraping the Pushgateway every second, alert rules loaded."""
    if PROMETHEUS_BIN is None:
        pytest.skip(f"prometheus {MISSING}")
    with running_pushgateway(tmp_path / "pushgateway") as gateway:
        prom = Prometheus(tmp_path / "prometheus", gateway.port)
        try:
            yield gateway, prom
        finally:
            prom.stop()


# ---------------------------------------------------------------- platform

@pytest.fixture
def fake(tmp_path: Path):
    data = load_sample()
    (tmp_path / "platform").mkdir()
    with FakePlatform(token=PLATFORM_TOKEN, data=data, held_out=held_out(data["rasa_nlu_data"]["common_examples"]),
                      workdir=tmp_path / "platform") as platform:
        yield platform


@pytest.fixture
def client(fake: FakePlatform):
    from nlu_ci.registry.platform import PlatformClient

    c = PlatformClient(fake.url, PLATFORM_TOKEN, timeout=2, retries=3, eval_timeout=30, poll_interval=0.05,
                       backoff=0.01)
    c.slept = []
    c._sleep = c.slept.append  # record the waits instead of sleeping (backoff values are asserted)
    return c


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A real rasa_nlu model (trained once per session), in a folder named like a store model."""
    base = tmp_path_factory.mktemp("trained")
    named = base / "model_20260101-000000"
    shutil.copytree(train(base / "t").model_dir, named)
    return named


# ---------------------------------------------------------------- the CLI

@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    p = tmp_path / "fast_config.yml"
    p.write_text(FAST_CONFIG)
    return p


@pytest.fixture
def sample_examples() -> list[dict]:
    return load_sample()["rasa_nlu_data"]["common_examples"]


@pytest.fixture
def cli(tmp_path: Path, fast_config: Path):
    """``cli(args, **env)`` runs ``nlu-ci`` in a subprocess against a fresh store in tmp_path/models
    (``cli.config`` may be set to another pipeline config first, e.g. the shipped nlu_config.yml)."""
    models = tmp_path / "models"

    def _run(args: list[str], timeout: float = 300, **env: str) -> CliResult:
        e = cli_env(models, NLU_CI_CONFIG=str(_run.config), **env)
        return run_cli(args, e, timeout=timeout)

    _run.models = models
    _run.store = models / "default"
    _run.config = fast_config
    return _run


@pytest.fixture(params=["fast", "shipped"])
def any_pipeline(request, cli) -> str:
    """Runs the test twice: with the fast test pipeline, and with the shipped nlu_config.yml."""
    if request.param == "shipped":
        cli.config = CONFIG
    return request.param
