"""Every bad input gets one clear line naming the file and the problem, the documented exit code,
outcome `failed` in report and history, and the active model untouched."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from nlu_ci.registry.store import ModelStore
from support.data import FAST_CONFIG, SAMPLE, cli_env, load_sample, run_cli, write_data


def _md(tmp: Path, text: str) -> Path:
    p = tmp / "data.md"
    p.write_text(text)
    return p


def _json(tmp: Path, text: str, name: str = "data.json") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def _bytes(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    return p


def _examples(tmp: Path, examples: list[dict]) -> Path:
    return write_data(tmp / "data.json", examples)


EX = load_sample()["rasa_nlu_data"]["common_examples"]
BAD_DATA = {
    "missing file": (lambda t: t / "nope.json", "not found"),
    "empty folder": (lambda t: (t / "empty").mkdir() or t / "empty", "no training data files"),
    "malformed json": (lambda t: _json(t, '{"rasa_nlu_data": {"common_examples": [\n  {"text": "hi",}\n]}}'), "line 2"),
    "not rasa json": (lambda t: _json(t, '{"hello": 1}'), "rasa_nlu_data"),
    "empty data": (lambda t: _examples(t, []), "no training examples"),
    "single intent": (lambda t: _examples(t, [e for e in EX if e["intent"] == "greet"]), "at least 2 intents"),
    "too few examples for the split": (
        lambda t: _examples(t, [e for e in EX if e["intent"] != "deny"] + [EX[[e["intent"] for e in EX].index("deny")]]),
        "too few: deny (1)"),
    # one bad span is repaired and listed (tests/data/test_cleaning.py); more than 1 % of examples: refused
    "entity offsets do not match": (
        lambda t: _examples(t, EX[:-1] + [{"text": f"large pizza please {i}", "intent": "order_pizza",
                                           "entities": [{"start": 0, "end": 4, "value": "large", "entity": "size"}]}
                                          for i in range(5)]),
        "do not match the text"),
    "entity offsets out of range": (
        lambda t: _examples(t, EX[:-1] + [{"text": f"hi {i}", "intent": "greet",
                                           "entities": [{"start": 0, "end": 9, "value": "hi", "entity": "x"}]}
                                          for i in range(5)]),
        "entity"),
    "malformed markdown": (lambda t: _md(t, "## intent:greet\nhello there\n- hi\n"), "data.md"),
    "binary garbage": (lambda t: _bytes(t / "data.json", b"\xff\xfe\x00garbage"), "data.json"),
}


@pytest.fixture(scope="module")
def promoted_template(tmp_path_factory, request):
    """One real promoted store per module; each test gets its own copy (training once keeps the suite fast)."""

    base = tmp_path_factory.mktemp("promoted")
    cfg = base / "fast_config.yml"
    cfg.write_text(FAST_CONFIG)
    r = run_cli(["run", "--data", str(SAMPLE)], cli_env(base / "models", NLU_CI_CONFIG=str(cfg)))
    assert r.code == 0, r.output
    return base / "models"


@pytest.fixture
def promoted(cli, promoted_template):
    shutil.copytree(promoted_template, cli.models)
    return (cli.store / "ACTIVE").read_text().strip()


def assert_failed_cleanly(cli, r, active: str, code: int, needle: str, where: str | None):
    assert r.code == code, r.output
    rep = json.loads(r.stdout)
    assert rep["outcome"] == "failed"
    assert rep["error"] and "\n" not in rep["error"]
    assert needle.lower() in rep["error"].lower(), rep["error"]
    if where:
        assert where in rep["error"], rep["error"]
    assert "Traceback" not in r.stderr
    assert (cli.store / "ACTIVE").read_text().strip() == active
    assert ModelStore(cli.models).verify(active) == []
    last = json.loads((cli.store / "history.jsonl").read_text().splitlines()[-1])
    assert last["outcome"] == "failed" and last["error"] == rep["error"]
    assert json.loads((cli.store / "last_report.json").read_text())["outcome"] == "failed"
    assert list((cli.store / ".incoming").iterdir()) == []


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_training_data(cli, tmp_path, promoted, case):
    make, needle = BAD_DATA[case]
    src = tmp_path / "src"
    src.mkdir()
    path = make(src)
    r = cli(["run", "--data", str(path), "--json"])
    assert_failed_cleanly(cli, r, promoted, 2, needle, path.name)


BAD_CONFIG = {
    "unknown component": ("language: en\npipeline:\n  - name: WhitespaceTokenizer\n  - name: NoSuchClassifier\n",
                          "unknown component 'NoSuchClassifier'"),
    "invalid yaml": ("language: en\npipeline: [\n", "invalid YAML"),
    "not a mapping": ("- just\n- a list\n", "mapping"),
    "empty pipeline": ("language: en\npipeline: []\n", "non-empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIG))
def test_bad_pipeline_config(cli, tmp_path, promoted, case):
    text, needle = BAD_CONFIG[case]
    cfg = tmp_path / "bad_config.yml"
    cfg.write_text(text)
    r = cli(["run", "--data", str(SAMPLE), "--config", str(cfg), "--json"])
    assert_failed_cleanly(cli, r, promoted, 2, needle, "bad_config.yml")


def test_missing_config(cli, tmp_path, promoted):
    r = cli(["run", "--data", str(SAMPLE), "--config", str(tmp_path / "absent.yml"), "--json"])
    assert_failed_cleanly(cli, r, promoted, 2, "not found", "absent.yml")


def test_bad_settings_are_usage_errors(cli):
    for args, env, needle in [
        (["run", "--test-fraction", "1.5"], {}, "test-fraction"),
        (["run"], {"NLU_CI_KEEP_MODELS": "many"}, "NLU_CI_KEEP_MODELS"),
        (["run", "--output", "xml"], {}, "invalid choice"),
    ]:
        r = cli(args, **env)
        assert r.code == 2, r.output
        assert needle in r.stderr.strip().splitlines()[-1]  # the last line names the problem
        assert "Traceback" not in r.stderr


def test_no_data_configured(cli):
    r = cli(["run", "--json"])
    assert r.code == 2 and "NLU_CI_DATA" in r.json["error"]


NOBODY = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")


def test_models_dir_not_writable(tmp_path):
    """Run as a user who cannot write the models folder: as root (how CI runs) through setpriv as nobody,
    since root ignores file permissions; as any other user with the folder made read-only."""
    as_root = os.geteuid() == 0
    if as_root and shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run this test as root")
    scratch = Path(tempfile.mkdtemp(prefix="nlu-ci-unwritable-"))  # outside pytest's 0700 tmp folder
    try:
        os.chmod(scratch, 0o755)
        models = scratch / "models"
        models.mkdir()
        os.chmod(models, 0o755 if as_root else 0o555)  # root's: read-only for nobody
        config = scratch / "fast_config.yml"
        config.write_text(FAST_CONFIG)
        os.chmod(config, 0o644)
        home = scratch / "home"
        home.mkdir(mode=0o777)
        os.chmod(home, 0o777)
        env = cli_env(models, NLU_CI_CONFIG=str(config), HOME=str(home))
        r = run_cli(["run", "--data", str(SAMPLE), "--json"], env, prefix=NOBODY if as_root else ())
        assert r.code == 2, r.output
        error = r.json["error"]
        assert ("not writable" in error or "cannot create" in error) and str(models) in error, error
        assert "\n" not in error and r.json["outcome"] == "failed"
        assert os.listdir(models) == []  # nothing written
    finally:
        os.chmod(scratch / "models", 0o755)
        shutil.rmtree(scratch, ignore_errors=True)


def test_models_dir_is_a_file(cli, tmp_path):
    cli.models.write_text("not a folder")
    r = cli(["run", "--data", str(SAMPLE), "--json"])
    assert r.code == 2, r.output
    assert str(cli.models) in r.json["error"] and "\n" not in r.json["error"]
