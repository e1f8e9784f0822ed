"""Fixtures shared by every test suite (helpers live in nluci_testing.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from nluci_testing import FAST_CONFIG, CliResult, cli_env, load_sample, run_cli


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
    """``cli(args, **env)`` runs ``nlu-ci`` in a subprocess against a fresh store in tmp_path/models."""
    models = tmp_path / "models"

    def _run(args: list[str], timeout: float = 300, **env: str) -> CliResult:
        e = cli_env(models, NLU_CI_CONFIG=str(fast_config), **env)
        return run_cli(args, e, timeout=timeout)

    _run.models = models
    _run.store = models / "default"
    return _run
