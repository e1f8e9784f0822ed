"""Every serving flag is also an environment variable (settings.OPTIONS), with one-line errors for bad values,
and ``nlu-ci serve`` builds the platform's tagged-model URL (token as the platform wants it) when no URL is given."""
from __future__ import annotations

import pytest

from nlu_ci import redact
from nlu_ci.errors import ConfigError
from nlu_ci.serving.rasa_server import endpoint_config
from nlu_ci.settings import from_env

ENV = {"NLU_CI_HOST": "0.0.0.0", "NLU_CI_PORT": "5001", "NLU_CI_MODEL_URL": "http://m:8080/models/shop",
       "NLU_CI_PULL_INTERVAL": "2.5", "NLU_CI_SWAP": "stock", "NLU_CI_ZIP_CACHE": "/tmp/z"}


def test_serving_settings_come_from_the_environment():
    s = from_env(ENV)
    assert (s.host, s.port, s.model_url, s.pull_interval, s.swap, str(s.zip_cache)) == \
        ("0.0.0.0", 5001, "http://m:8080/models/shop", 2.5, "stock", "/tmp/z")
    assert from_env({}).host == "127.0.0.1" and from_env({}).port is None  # each command picks its port


@pytest.mark.parametrize("key, value, message", [
    ("NLU_CI_PORT", "70000", "is not a TCP port"), ("NLU_CI_PORT", "http", "is not a whole number"),
    ("NLU_CI_PULL_INTERVAL", "0", "--pull-interval: must be > 0"), ("NLU_CI_SWAP", "fast", "one of atomic, stock"),
    ("NLU_CI_MODEL_URL", "m:8080/models/x", "must start with http"),
])
def test_bad_serving_settings_are_one_line_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        from_env({**ENV, key: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("auth", ["query", "bearer"])
def test_without_a_model_url_serve_pulls_the_platforms_tagged_model(auth):
    s = from_env({"RASA_PLATFORM_HOST": "https://platform.example/", "NLU_CI_PROJECT": "shop",
                  "RASA_PLATFORM_TAG": "production", "RASA_API_TOKEN": "tok-serving-7f3a", "RASA_PLATFORM_AUTH": auth})
    ep = endpoint_config(s)
    assert ep.url == "https://platform.example/api/projects/shop/models/tags/production"
    if auth == "query":
        assert (ep.token, ep.token_name) == ("tok-serving-7f3a", "api_token")
    else:
        assert ep.headers == {"Authorization": "Bearer tok-serving-7f3a"} and ep.token is None
    assert "tok-serving-7f3a" not in redact.redact(f"pulling {ep.url} with {ep.headers} {ep.token}")
