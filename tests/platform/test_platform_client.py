"""PlatformClient against the fake Rasa Platform (a real HTTP server on loopback)."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from nlu_ci.errors import DataError, PlatformError
from nlu_ci.registry.platform import PlatformClient, parse_evaluation, parse_retry_after
from support.data import held_out
from support.data import load_sample as sample_data
from support.fixtures import PLATFORM_TOKEN as TOKEN


def assert_clean(message: str, *must: str) -> None:
    assert TOKEN not in message
    assert "\n" not in message
    for part in must:
        assert part in message, f"{part!r} not in {message!r}"


# ---------------------------------------------------------------- auth and data

def test_download_json_is_written_as_data_json_and_loads(client, tmp_path, fake):
    path = client.download_data(tmp_path / "dl")
    assert path.name == "data.json"
    assert json.loads(path.read_text()) == fake.data
    assert fake.requests[-1]["query_keys"] == ["api_token"]


def test_download_markdown_is_written_as_data_md(client, tmp_path, fake):
    fake.data = "## intent:greet\n- hello\n- hi there\n\n## intent:bye\n- goodbye\n- see you\n"
    fake.data_content_type = "text/markdown; charset=utf-8"
    path = client.download_data(tmp_path / "dl")
    assert path.name == "data.md"
    from nlu_ci.data.dataset import load_training_data

    assert len(load_training_data(path).training_examples) == 4


def test_bearer_auth_sends_no_query_token(fake, tmp_path):
    c = PlatformClient(fake.url, TOKEN, auth="bearer", timeout=2, retries=1)
    assert c.download_data(tmp_path).name == "data.json"
    assert fake.requests[-1]["query_keys"] == []


def test_wrong_token_is_a_platform_error_without_the_token(fake, tmp_path):
    c = PlatformClient(fake.url, TOKEN + "-wrong", timeout=2, retries=3)
    with pytest.raises(PlatformError) as err:
        c.download_data(tmp_path)
    assert_clean(str(err.value), "HTTP 401", "GET", "/api/projects/default/data.json", "RASA_API_TOKEN")
    assert TOKEN + "-wrong" not in str(err.value)
    assert fake.count("data") == 1  # no retry on 401


@pytest.mark.parametrize("fault,expect", [("malformed", "malformed JSON"), ("content_type", "'text/html'")])
def test_bad_data_answers_are_platform_errors(client, fake, tmp_path, fault, expect):
    fake.inject("data", fault)
    with pytest.raises(PlatformError) as err:
        client.download_data(tmp_path / "dl")
    assert_clean(str(err.value), expect, "data.json")
    assert not list((tmp_path / "dl").iterdir())  # nothing half-written left behind


def test_unusable_training_data_is_a_data_error(client, fake, tmp_path):
    data = sample_data()
    data["rasa_nlu_data"]["common_examples"] = [e for e in data["rasa_nlu_data"]["common_examples"]
                                                if e["intent"] == data["rasa_nlu_data"]["common_examples"][0]["intent"]]
    fake.data = data
    with pytest.raises(DataError) as err:
        client.download_data(tmp_path)
    assert_clean(str(err.value), "data.json", "at least 2 intents")


# ---------------------------------------------------------------- retries

def test_503_then_ok_is_retried_with_backoff(client, fake, tmp_path):
    fake.inject("data", 503, times=2)
    assert client.download_data(tmp_path).is_file()
    assert fake.count("data") == 3
    assert len(client.slept) == 2 and all(0 <= s <= 0.04 for s in client.slept)


def test_429_honours_retry_after(client, fake, tmp_path):
    fake.inject("list", 429, retry_after="3")
    assert client.list_models() == []
    assert fake.count("list") == 2
    assert len(client.slept) == 1 and 3.0 <= client.slept[0] <= 3.0 + client.backoff


def test_retry_after_longer_than_the_run_should_wait_gives_up(client, fake):
    fake.inject("list", 429, retry_after="3600")
    with pytest.raises(PlatformError) as err:
        client.list_models()
    assert_clean(str(err.value), "HTTP 429", "Retry-After 3600s", "gave up after 1 attempt")
    assert client.slept == []


@pytest.mark.parametrize("status", [500, 404, 400, 403])
def test_other_errors_are_not_retried(client, fake, status):
    fake.inject("list", status)
    with pytest.raises(PlatformError) as err:
        client.list_models()
    assert_clean(str(err.value), f"HTTP {status}", "GET", "/api/projects/default/models/nlu")
    assert fake.count("list") == 1


def test_persistent_503_gives_up_after_the_configured_attempts(client, fake):
    fake.inject("list", 503, times=None)
    with pytest.raises(PlatformError) as err:
        client.list_models()
    assert_clean(str(err.value), "HTTP 503", "gave up after 3 attempts")
    assert fake.count("list") == 3


def test_dropped_connection_is_retried(client, fake):
    fake.inject("list", "down")
    assert client.list_models() == []
    assert fake.count("list") == 2


def test_download_cut_off_midway_is_retried(client, fake, tmp_path):
    fake.inject("data", "truncated")
    path = client.download_data(tmp_path / "dl")
    assert json.loads(path.read_text()) == fake.data
    assert fake.count("data") == 2


def test_download_cut_off_every_time_fails(client, fake, tmp_path):
    fake.inject("data", "truncated", times=None)
    with pytest.raises(PlatformError) as err:
        client.download_data(tmp_path / "dl")
    assert_clean(str(err.value), "download interrupted", "gave up after 3 attempts")
    assert list((tmp_path / "dl").iterdir()) == []


def test_read_timeout_is_retried(fake):
    c = PlatformClient(fake.url, TOKEN, timeout=0.3, retries=2, backoff=0.01)
    fake.inject("list", "timeout", seconds=1.0)
    t0 = time.monotonic()
    assert c.list_models() == []
    assert 0.3 <= time.monotonic() - t0 < 5


def test_read_timeout_every_time_fails_with_the_timeout_named(fake):
    c = PlatformClient(fake.url, TOKEN, timeout=0.2, retries=2, backoff=0.01)
    fake.inject("list", "timeout", times=None, seconds=0.6)
    with pytest.raises(PlatformError) as err:
        c.list_models()
    assert_clean(str(err.value), "read timeout after 0.2s", "gave up after 2 attempts")


def test_server_down_is_a_connection_error_after_retries(fake):
    url = fake.url
    fake.stop()
    c = PlatformClient(url, TOKEN, timeout=1, retries=2, backoff=0.01)
    with pytest.raises(PlatformError) as err:
        c.list_models()
    assert_clean(str(err.value), "cannot connect", "connection refused", "gave up after 2 attempts")


@pytest.mark.parametrize("host,auth,expect", [("ftp://x", "query", "RASA_PLATFORM_HOST"), ("", "query", "RASA_PLATFORM_HOST"),
                                               ("http://x", "basic", "RASA_PLATFORM_AUTH")])
def test_bad_client_configuration_is_a_config_error(host, auth, expect):
    from nlu_ci.errors import ConfigError

    with pytest.raises(ConfigError, match=expect):
        PlatformClient(host, TOKEN, auth=auth)


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


# ---------------------------------------------------------------- models and tags

def test_upload_stores_a_loadable_model(client, fake, trained_model):
    name = client.upload_model(trained_model)
    assert name == trained_model.name
    assert fake.uploads == [name]
    assert (fake.models[name].path / "metadata.json").is_file()
    assert client.list_models() == [{"model": name, "tags": [], "uploaded_at": fake.models[name].uploaded_at,
                                     "sha256": fake.models[name].sha256}]
    assert len(fake.models[name].sha256) == 64  # the zip's SHA-256, sent with the upload
    from nlu_ci.engine.predict import load_model, predict

    interpreter = load_model(fake.models[name].path)
    assert predict(interpreter, ["hello"])[0]["intent"]


def test_upload_whose_answer_is_lost_is_not_sent_twice(client, fake, trained_model):
    fake.inject("upload", "lost")
    assert client.upload_model(trained_model) == trained_model.name
    assert fake.uploads == [trained_model.name]  # the retry found it in the list
    assert fake.count("upload") == 1 and fake.count("list") == 1


def test_upload_retry_that_meets_the_first_attempt_still_being_stored_leaves_one_model(fake, trained_model):
    """Attempt 1 times out while the platform is still storing it; the retry finds nothing in the list,
    uploads again and gets 409 (the name is taken): the client waits until the list shows its own upload."""
    fake.store_delay = 1.5
    c = PlatformClient(fake.url, TOKEN, timeout=0.5, retries=3, eval_timeout=30, poll_interval=0.05, backoff=0.01)
    assert c.upload_model(trained_model) == trained_model.name
    fake.settle()
    assert fake.uploads == [trained_model.name]
    assert [m["model"] for m in c.list_models()] == [trained_model.name]
    posts = [r["status"] for r in fake.requests if r["endpoint"] == "upload"]
    assert posts == [201, 409], posts  # the first stored (its answer too late), the retry refused
    assert fake.models[trained_model.name].sha256 == c.list_models()[0]["sha256"]


def test_upload_over_someone_elses_model_of_the_same_name_is_refused(client, fake, trained_model, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained_model, other)
    (other / "extra.txt").write_text("another model")
    fake.add_model(other, trained_model.name)
    with pytest.raises(PlatformError) as err:
        client.upload_model(trained_model)
    assert_clean(str(err.value), "POST", "/models/nlu", "name collision", trained_model.name)
    assert fake.uploads == [] and fake.count("upload") == 1
    assert (fake.models[trained_model.name].path / "extra.txt").is_file()  # theirs, untouched


def test_upload_retried_after_503_arrives_once(client, fake, trained_model):
    fake.inject("upload", 503)
    assert client.upload_model(trained_model) == trained_model.name
    assert fake.uploads == [trained_model.name]
    assert fake.count("upload") == 2


def test_upload_500_fails_without_retry(client, fake, trained_model):
    fake.inject("upload", 500)
    with pytest.raises(PlatformError) as err:
        client.upload_model(trained_model)
    assert_clean(str(err.value), "POST", "/models/nlu", "HTTP 500")
    assert fake.uploads == [] and fake.count("upload") == 1


def test_tags_are_exclusive_and_active_model_follows_the_tag(client, fake, trained_model):
    assert client.active_model() is None
    a = fake.add_model(trained_model, "model_a")
    b = fake.add_model(trained_model, "model_b")
    client.tag(a)
    assert client.active_model() == a
    client.tag(b)
    assert client.active_model() == b
    assert fake.tagged("active") == [b]
    assert client.previous_model() == a
    with pytest.raises(PlatformError) as err:
        client.tag("model_missing")
    assert_clean(str(err.value), "PUT", "/models/nlu/model_missing/tags/active", "HTTP 404")


def test_production_tag_on_rasa_x_style_installs(fake, trained_model):
    c = PlatformClient(fake.url, TOKEN, tag="production", retries=1)
    name = fake.add_model(trained_model, "model_a", tags=("active",))
    assert c.active_model() is None
    c.tag(name)
    assert c.active_model() == name and fake.tagged("production") == [name]


@pytest.mark.parametrize("fault", ["malformed", "content_type"])
def test_malformed_model_list(client, fake, fault):
    fake.inject("list", fault)
    with pytest.raises(PlatformError) as err:
        client.list_models()
    assert_clean(str(err.value), "/models/nlu")


# ---------------------------------------------------------------- evaluation

def test_platform_evaluation_matches_local_evaluation(client, fake, trained_model):
    from nlu_ci.engine.predict import load_model, predict
    from nlu_ci.evaluation import evaluate

    fake.eval_delay = 0.3  # the client must poll
    name = fake.add_model(trained_model)
    result = client.evaluate(name)
    assert result.source == "platform"
    assert fake.count("eval_get") >= 2
    test = held_out(sample_data()["rasa_nlu_data"]["common_examples"])
    local = evaluate(test, predict(load_model(trained_model), [e["text"] for e in test]))
    assert result.intent_f1 == pytest.approx(local.intent_f1)
    assert result.intent_precision == pytest.approx(local.intent_precision)
    assert result.intent_accuracy == pytest.approx(local.intent_accuracy)
    assert result.intent_macro_f1 == pytest.approx(local.intent_macro_f1)
    assert result.per_intent.keys() == local.per_intent.keys()
    assert [u["correct"] for u in result.utterances] == local.correct


def test_text_report_derives_per_intent_from_predictions(client, fake, trained_model):
    fake.report_as_dict = False
    result = client.evaluate(fake.add_model(trained_model))
    assert result.per_intent and result.intent_macro_f1 is not None
    assert sum(r["support"] for r in result.per_intent.values()) == len(fake.held_out)


def test_put_answered_with_text_still_polls_for_the_result(client, fake, trained_model):
    fake.inject("eval_put", 200, after=True, body="OK", content_type="text/plain")
    result = client.evaluate(fake.add_model(trained_model))
    assert result.source == "platform" and result.per_intent
    assert fake.count("eval_get") >= 1


def test_put_answered_with_the_result_inline_needs_no_poll(client, fake, trained_model):
    inline = {"intent_evaluation": {"f1_score": 0.25, "precision": 0.5, "accuracy": 0.75}}
    fake.inject("eval_put", 200, after=True, body=inline)
    result = client.evaluate(fake.add_model(trained_model))
    assert (result.intent_f1, result.intent_precision, result.intent_accuracy) == (0.25, 0.5, 0.75)
    assert fake.count("eval_get") == 0


def test_vendor_json_content_type_is_json(client, fake, trained_model):
    fake.inject("list", 200, body=[{"model": "m1", "tags": ["active"]}], content_type="application/vnd.rasa+json")
    assert client.active_model() == "m1"


def test_evaluation_timeout(fake, trained_model):
    c = PlatformClient(fake.url, TOKEN, eval_timeout=0.3, poll_interval=0.05, retries=1)
    fake.eval_delay = 5
    with pytest.raises(PlatformError) as err:
        c.evaluate(fake.add_model(trained_model))
    assert_clean(str(err.value), "no evaluation result within 0.3s", "/evaluations/")


def test_evaluation_of_unknown_model(client):
    with pytest.raises(PlatformError) as err:
        client.evaluate("model_nope")
    assert_clean(str(err.value), "PUT", "/evaluations/model_nope", "HTTP 404")


@pytest.mark.parametrize("body,expect", [
    ({}, "no 'intent_evaluation'"),
    ({"intent_evaluation": {"precision": 1, "accuracy": 1}}, "no 'f1_score'"),
    ({"intent_evaluation": {"f1_score": "high", "precision": 1, "accuracy": 1}}, "f1_score is not a number"),
    ({"intent_evaluation": {"f1_score": 1.5, "precision": 1, "accuracy": 1}}, "f1_score is not a number"),
])
def test_malformed_evaluations(body, expect):
    with pytest.raises(PlatformError, match=expect):
        parse_evaluation(body, "platform GET x")


def test_evaluation_without_report_or_predictions_still_gives_the_f1():
    r = parse_evaluation({"intent_evaluation": {"f1_score": 0.8, "precision": 0.9, "accuracy": 0.85,
                                                "report": "text"}}, "x")
    assert (r.intent_f1, r.intent_precision, r.intent_accuracy, r.utterances, r.per_intent) == (0.8, 0.9, 0.85, [], {})


# ---------------------------------------------------------------- every fault at every endpoint

def _call(endpoint, c, fake, model, tmp_path):
    if endpoint == "data":
        return c.download_data(tmp_path / "dl")
    if endpoint == "upload":
        return c.upload_model(model)
    if endpoint == "list":
        return c.list_models()
    name = fake.add_model(model, "model_x") if "model_x" not in fake.models else "model_x"
    if endpoint in ("eval_put", "eval_get"):
        return c.evaluate(name)
    return c.tag(name)


MATRIX_FAULTS = {
    # fault: (inject kwargs, fails?, message when it fails) -- "malformed" depends on whether a body is read
    "down-once": ({"kind": "down"}, False, None),
    "down-always": ({"kind": "down", "times": None}, True, "gave up after 3 attempts"),
    "500": ({"kind": 500}, True, "HTTP 500"),
    "503-then-ok": ({"kind": 503, "times": 2}, False, None),
    "429-retry-after": ({"kind": 429, "retry_after": "2"}, False, None),
    "read-timeout-once": ({"kind": "timeout", "seconds": 1.0}, False, None),
    "401": ({"kind": 401}, True, "HTTP 401"),
    "malformed": ({"kind": "malformed", "after": True}, True, "malformed JSON"),  # work done, answer garbled
}
# endpoints whose success answer has no body to read: a malformed body there is not an error
IGNORES_BODY = {"upload", "tag"}


@pytest.mark.parametrize("fault", sorted(MATRIX_FAULTS))
@pytest.mark.parametrize("endpoint", ["data", "upload", "list", "eval_put", "eval_get", "tag"])
def test_fault_matrix(fake, trained_model, tmp_path, endpoint, fault):
    kwargs, fails, message = MATRIX_FAULTS[fault]
    if fault == "malformed" and endpoint in IGNORES_BODY:
        fails = False
    c = PlatformClient(fake.url, TOKEN, timeout=0.5, retries=3, eval_timeout=30, poll_interval=0.05, backoff=0.01)
    c.slept = []
    c._sleep = c.slept.append
    kwargs = dict(kwargs)
    fake.inject(endpoint, kwargs.pop("kind"), **kwargs)
    if fails:
        with pytest.raises(PlatformError) as err:
            _call(endpoint, c, fake, trained_model, tmp_path)
        assert_clean(str(err.value), message, "platform", "/api/projects/default/")
        if fault != "malformed":
            assert fake.tagged() == [] and fake.uploads == []
        expected_attempts = 3 if fault == "down-always" else 1
        assert fake.count(endpoint) == expected_attempts
        return
    result = _call(endpoint, c, fake, trained_model, tmp_path)
    fake.settle()  # every attempt the client gave up on has been served to its end
    if endpoint == "upload":
        assert fake.uploads == [trained_model.name]  # never twice, whatever happened to the first answer
        assert [m["model"] for m in c.list_models()] == [trained_model.name]
    elif endpoint == "tag":
        assert fake.tagged() == ["model_x"]
    elif endpoint.startswith("eval"):
        assert result.source == "platform" and result.intent_f1 > 0.5
    elif endpoint == "data":
        assert result.name == "data.json"
    if fault == "429-retry-after":
        assert 2.0 <= c.slept[0] <= 2.0 + c.backoff


# ---------------------------------------------------------------- the platform's own refusals

def test_a_wrong_token_is_refused_before_any_fault_and_not_retried(fake):
    fake.inject("list", 503, times=None)
    c = PlatformClient(fake.url, "not-the-token", timeout=2, retries=3, backoff=0.01)
    with pytest.raises(PlatformError) as err:
        c.list_models()
    assert_clean(str(err.value), "GET", "HTTP 401", "refused the API token")
    assert "not-the-token" not in str(err.value)
    assert fake.count("list") == 1  # 401 at once: the injected 503 (retried) never answered


def test_an_expired_token_fails_the_call_with_a_one_line_error(client, fake):
    assert client.list_models() == []
    fake.expire_token()
    with pytest.raises(PlatformError) as err:
        client.list_models()
    assert_clean(str(err.value), "HTTP 401", "refused the API token")
    assert fake.count("list") == 2


def test_a_token_that_expires_during_the_run(fake, trained_model):
    fake.token_expires = time.monotonic() + 3600
    c = PlatformClient(fake.url, TOKEN, timeout=2, retries=3, backoff=0.01)
    name = c.upload_model(trained_model)
    fake.expire_token()
    with pytest.raises(PlatformError, match="HTTP 401"):
        c.tag(name)
    assert fake.tagged() == []


def test_an_upload_over_the_size_limit_is_a_413_failure_without_retry(client, fake, trained_model):
    fake.max_upload_bytes = 1000
    with pytest.raises(PlatformError) as err:
        client.upload_model(trained_model)
    assert_clean(str(err.value), "POST", "/models/nlu", "HTTP 413")
    assert fake.uploads == [] and fake.count("upload") == 1


def test_concurrent_tag_puts_leave_exactly_one_model_tagged(client, fake, trained_model):
    from concurrent.futures import ThreadPoolExecutor

    names = [fake.add_model(trained_model, f"model_2026010{i}-000000") for i in range(1, 5)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client.tag, names * 5))
    fake.settle()
    assert len(fake.tagged()) == 1 and fake.tagged()[0] in names
    assert [m["model"] for m in client.list_models() if "active" in m["tags"]] == fake.tagged()


def test_a_tag_race_shows_in_the_list_after_the_put(client, fake, trained_model):
    ours = fake.add_model(trained_model, "model_20260101-000000")
    theirs = fake.add_model(trained_model, "model_20260102-000000")
    fake.race_tag(theirs)
    client.tag(ours)  # answered 204, then another writer moves the tag
    fake.settle()
    assert client.active_model() == theirs
