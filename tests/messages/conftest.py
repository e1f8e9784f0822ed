"""The inbox suites share one store with a real active model (``nlu-ci run`` on the sample data, trained once)."""
from __future__ import annotations

import pytest

from support.data import FAST_CONFIG, SAMPLE, cli_env, run_cli
from support.postgres import postgres_server  # noqa: F401  (the session fixture)


@pytest.fixture(scope="session")
def inbox_store(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("inbox-store")
    config = base / "fast_config.yml"
    config.write_text(FAST_CONFIG)
    env = cli_env(base / "models", NLU_CI_CONFIG=str(config))
    r = run_cli(["run", "--data", str(SAMPLE)], env)
    assert r.code == 0, r.output
    return {"env": env, "store": base / "models" / "default", "base": base}

