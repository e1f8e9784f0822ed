"""Every option is a flag with a default from an environment variable; secrets only from env or files."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nlu_ci import redact, settings
from nlu_ci.errors import ConfigError


def parse(args, environ, names=None):
    p = argparse.ArgumentParser()
    settings.add_arguments(p, names or [o.name for o in settings.OPTIONS], environ)
    return settings.from_namespace(p.parse_args(args))


def test_every_option_has_an_env_var_and_the_flag_wins():
    envs = [o.env for o in settings.OPTIONS]
    assert len(envs) == len(set(envs))
    s = parse([], {"NLU_CI_TEST_FRACTION": "0.3", "NLU_CI_MODELS_DIR": "/pvc", "NLU_CI_DRY_RUN": "true",
                   "NLU_CI_CONFIG": "a.yml,b.yml"})
    assert s.test_fraction == 0.3 and s.models_dir == Path("/pvc") and s.dry_run is True
    assert s.configs == [Path("a.yml"), Path("b.yml")]
    s = parse(["--test-fraction", "0.25", "--no-dry-run", "--config", "c.yml"], {"NLU_CI_TEST_FRACTION": "0.3",
                                                                                    "NLU_CI_DRY_RUN": "1"})
    assert s.test_fraction == 0.25 and s.dry_run is False and s.configs == [Path("c.yml")]


def test_secret_file_wins_and_is_registered_for_redaction(tmp_path):
    f = tmp_path / "token"
    f.write_text("file-token-123456\n")
    s = parse([], {"RASA_API_TOKEN": "env-token-abcdef", "RASA_API_TOKEN_FILE": str(f)})
    assert s.api_token == "file-token-123456"
    assert "file-token-123456" not in redact.redact(f"GET /x?api_token={s.api_token}")
    assert "file-token-123456" not in repr(s) and s.public()["api_token"] == "***"


def test_secrets_cannot_be_given_as_flags():
    p = argparse.ArgumentParser()
    settings.add_arguments(p, ["api_token", "slack_webhook_url"], {})
    with pytest.raises(SystemExit):
        p.parse_args(["--api-token", "x"])


@pytest.mark.parametrize("env,needle", [
    ({"NLU_CI_TEST_FRACTION": "abc"}, "NLU_CI_TEST_FRACTION"),
    ({"NLU_CI_TEST_FRACTION": "0"}, "between 0 and 1"),
    ({"NLU_CI_KEEP_MODELS": "1"}, "at least 2"),
    ({"NLU_CI_DRY_RUN": "maybe"}, "true or false"),
    ({"NLU_CI_EVALUATION": "platform"}, "RASA_PLATFORM_HOST"),
    ({"RASA_API_TOKEN_FILE": "/nonexistent/token"}, "cannot read secret file"),
    ({"NLU_CI_PROJECT": "../etc"}, "not a valid project name"),
])
def test_bad_values_are_config_errors(env, needle):
    with pytest.raises(ConfigError, match=needle):
        parse([], env)
