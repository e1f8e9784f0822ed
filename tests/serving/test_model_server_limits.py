"""The connection bounds of ``nlu-ci serve-models`` are settings like any other (flag + environment variable), bad
values are one line and exit 2, and the open-file limit is raised to fit the connection cap."""
from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from serving_helpers import ROOT, free_port

from nlu_ci.commands.serve_models import server_limits
from nlu_ci.errors import ConfigError
from nlu_ci.serving.bounded import FD_RESERVE, Limits
from nlu_ci.settings import from_env


def test_the_bounds_come_from_the_environment_with_documented_defaults():
    assert server_limits(from_env({})) == Limits(128, 10.0, 30.0)
    s = from_env({"NLU_CI_MODEL_SERVER_MAX_CONNECTIONS": "16", "NLU_CI_MODEL_SERVER_HEAD_TIMEOUT": "2.5",
                  "NLU_CI_MODEL_SERVER_IO_TIMEOUT": "5"})
    assert server_limits(s) == Limits(16, 2.5, 5.0)


@pytest.mark.parametrize("key, value, message", [
    ("NLU_CI_MODEL_SERVER_MAX_CONNECTIONS", "0", "is not between 1 and 10000"),
    ("NLU_CI_MODEL_SERVER_MAX_CONNECTIONS", "100000", "is not between 1 and 10000"),
    ("NLU_CI_MODEL_SERVER_HEAD_TIMEOUT", "0", "is not between 0 and 3600 seconds"),
    ("NLU_CI_MODEL_SERVER_IO_TIMEOUT", "-1", "is not between 0 and 3600 seconds"),
])
def test_bad_bounds_are_one_line_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        server_limits(from_env({key: value}))
    assert "\n" not in str(err.value)


RAISE = """
import resource, sys
from nlu_ci.serving.bounded import ensure_file_limit
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
print(ensure_file_limit(int(sys.argv[1])), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_the_file_limit_is_raised_to_fit_the_connections():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1000 + FD_RESERVE:
        pytest.skip(f"hard file limit {hard}")
    out = subprocess.run([sys.executable, "-c", RAISE, "1000"], capture_output=True, text=True, timeout=60,
                         cwd=str(ROOT)).stdout.split()
    assert out == ["None", str(1000 + FD_RESERVE)]


def test_the_cli_refuses_a_bad_bound_with_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nlu_ci.cli", "serve-models", "--models-dir", str(tmp_path),
                           "--port", str(free_port()), "--model-server-max-connections", "0"],
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--model-server-max-connections" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
