"""`nlu-ci report` after every kind of run a store records: a skipped, a failed and a locked run each get a page
(real `nlu-ci` processes on a real store), and a report it cannot read is one line and exit 2, never a
traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from nlu_ci.registry.store import ModelStore
from support.data import FAST_CONFIG, SAMPLE, cli_env, run_cli


def no_traceback(result) -> None:
    assert "Traceback" not in result.output and "UndefinedError" not in result.output, result.output


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    """A store with a promoted run and then a skipped one (same data and config)."""
    tmp = tmp_path_factory.mktemp("report-command")
    (tmp / "fast.yml").write_text(FAST_CONFIG)
    env = cli_env(tmp / "models", NLU_CI_CONFIG=str(tmp / "fast.yml"))
    first = run_cli(["run", "--data", str(SAMPLE), "--json"], env)
    assert first.code == 0 and first.json["outcome"] == "promoted", first.output
    return {"tmp": tmp, "env": env}


def page_of(result) -> str:
    assert result.code == 0, result.output
    no_traceback(result)
    path = Path(result.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".html", result.output
    return path.read_text(encoding="utf-8")


def test_report_after_a_skipped_run_is_a_page(store):
    skipped = run_cli(["run", "--data", str(SAMPLE), "--json"], store["env"])
    assert skipped.code == 0 and skipped.json["outcome"] == "skipped", skipped.output
    assert "review_page" not in skipped.json  # nothing was trained: the run made no page itself
    html = page_of(run_cli(["report"], store["env"]))  # the newest run: the skipped one
    assert "skipped" in html and skipped.json["active"]["model"] in html


def test_report_after_a_failed_run_is_a_page(store):
    broken = store["tmp"] / "broken.json"
    broken.write_text('{"rasa_nlu_data": {"common_examples": [')
    failed = run_cli(["run", "--data", str(broken), "--json"], store["env"])
    assert failed.code == 2 and failed.json["outcome"] == "failed", failed.output
    html = page_of(run_cli(["report"], store["env"]))
    assert "failed" in html and "broken.json" in html  # the error is on the page


def test_report_after_a_locked_run_is_a_page(store):
    out = store["tmp"] / "locked.json"
    with ModelStore(store["tmp"] / "models").locked():  # another run holds the store
        locked = run_cli(["run", "--data", str(SAMPLE), "--json", "--report", str(out)], store["env"])
    assert locked.code == 0 and locked.json["outcome"] == "locked", locked.output
    html = page_of(run_cli(["report", str(out), "--output-file", str(store["tmp"] / "locked.html")], store["env"]))
    assert "locked" in html and "locked by another run" in html


def test_a_report_that_is_not_one_is_one_line(store):
    bad = store["tmp"] / "bad.json"
    bad.write_text("[1, 2]")  # JSON, not a report (a malformed report's sections: test_report_shapes.py)
    result = run_cli(["report", str(bad)], store["env"])
    no_traceback(result)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1 and "bad.json" in result.stderr
