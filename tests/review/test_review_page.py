"""The review page (reports/<run>.html): made by a real run, linked from the report, `status` and `nlu-ci report`,
rendered by a real headless chromium (Debian's, driven by playwright): no console errors, the charts drawn,
user data shown as text (never markup)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nlu_ci.report.model import CheckResult, DataInfo, DecisionRecord, ModelScores, RunReport
from nlu_ci.review import page
from support.data import SAMPLE, shuffled_train_labels, write_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = '<script>alert("x")</script> book a table <img src=x onerror=alert(1)> & "quotes"'


def browse(path: Path) -> dict:
    """Open ``path`` in headless chromium; the console errors, page errors, dialogs and what is drawn."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make install-system)")
    seen: dict = {"console_errors": [], "page_errors": [], "dialogs": []}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            tab = browser.new_page(viewport={"width": 1200, "height": 900})
            tab.on("console", lambda m: seen["console_errors"].append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
            tab.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
            tab.goto(path.as_uri(), wait_until="load")
            seen["charts"] = tab.eval_on_selector_all(
                "svg.chart", """els => els.map(e => { const r = e.getBoundingClientRect();
                   return {label: e.getAttribute('aria-label'), w: r.width, h: r.height,
                           marks: [...e.querySelectorAll('rect.bar, rect.cell')].filter(
                              m => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length}; })""")
            seen["scripts"] = tab.eval_on_selector_all("script", "els => els.length")
            seen["images"] = tab.eval_on_selector_all("img", "els => els.length")
            seen["text"] = tab.inner_text("body")
            seen["title"] = tab.title()
        finally:
            browser.close()
    return seen


@pytest.fixture(scope="module")
def rejected_run(tmp_path_factory) -> dict:
    """A real store: a run on the sample data (promoted), then one on worse data (rejected)."""
    from support.data import FAST_CONFIG, cli_env, load_sample, run_cli

    tmp = tmp_path_factory.mktemp("review")
    (tmp / "fast.yml").write_text(FAST_CONFIG)
    env = cli_env(tmp / "models", NLU_CI_CONFIG=str(tmp / "fast.yml"),
                  NLU_CI_REVIEW_URL_BASE="https://nlu-ci.example.test/store/")
    first = run_cli(["run", "--data", str(SAMPLE), "--json"], env)
    assert first.code == 0 and first.json["outcome"] == "promoted", first.output
    assert Path(first.json["review_page"]["path"]).is_file(), first.output  # the bootstrap run (no active model) too
    assert "review page not written" not in first.stderr
    worse = write_data(tmp / "worse.json", shuffled_train_labels(load_sample()["rasa_nlu_data"]["common_examples"], 0.6))
    r = run_cli(["run", "--data", str(worse), "--json"], env)
    assert r.code == 0 and r.json["outcome"] == "rejected", r.output
    return {"report": r.json, "env": env, "store": tmp / "models" / "default", "tmp": tmp}


def test_a_run_writes_its_page_beside_its_report_and_links_it(rejected_run):
    rep, store = rejected_run["report"], rejected_run["store"]
    section = rep["review_page"]
    path = Path(section["path"])
    assert path.parent == store / "reports" and path.suffix == ".html"
    assert path.with_suffix(".json").is_file()  # reports/<stamp>.json and reports/<stamp>.html
    assert section["url"] == f"https://nlu-ci.example.test/store/reports/{path.name}"
    assert json.loads((store / "last_report.json").read_text())["review_page"] == section
    html = path.read_text()
    assert "<script" not in html.lower() and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_status_and_the_report_command_point_at_the_page(rejected_run, tmp_path):
    from support.data import run_cli

    env, section = rejected_run["env"], rejected_run["report"]["review_page"]
    status = run_cli(["status", "--json"], env)
    assert status.code == 0 and status.json["review_page"] == section["url"]
    assert f"last review page: {section['url']}" in run_cli(["status"], env).stdout
    r = run_cli(["report"], env)
    assert r.code == 0 and r.stdout.strip() == section["path"]
    stamp = Path(section["path"]).stem
    out = tmp_path / "elsewhere" / "page.html"
    r = run_cli(["report", stamp, "--output-file", str(out), "--json"], env)
    assert r.code == 0 and r.json["page"] == str(out) and r.json["run"] == stamp
    assert out.read_text() == Path(section["path"]).read_text()
    r = run_cli(["report", "20000101T000000-000000"], env)
    assert r.code == 2 and "no such run" in r.stderr
    # a run recorded without a page (older versions) gets one made from its report and predictions
    original = Path(section["path"]).read_text()
    Path(section["path"]).unlink()
    r = run_cli(["report", stamp], env)
    assert r.code == 0 and r.stdout.strip() == section["path"] and Path(section["path"]).read_text() == original


def test_the_page_renders_in_chromium_with_every_chart_drawn(rejected_run):
    rep = rejected_run["report"]
    seen = browse(Path(rep["review_page"]["path"]))
    assert seen["console_errors"] == [] and seen["page_errors"] == [] and seen["dialogs"] == []
    charts = {c["label"]: c for c in seen["charts"]}
    assert {"per-intent F1 change", "confusion matrix of the most confused intents",
            "candidate: intent confidence of correct and wrong predictions",
            "active model: intent confidence of correct and wrong predictions"} <= set(charts)
    for chart in charts.values():
        assert chart["w"] > 50 and chart["h"] > 50 and chart["marks"] > 0, chart
    # the side-by-side numbers and the gate's verdict are on the page
    text = seen["text"]
    assert rep["candidate"]["model"] in text and rep["active"]["model"] in text
    assert f"{rep['candidate']['intent_f1']:.4f}" in text and f"{rep['active']['intent_f1']:.4f}" in text
    failed = [c["name"] for c in rep["decision"]["checks"] if c["enabled"] and not c["passed"]]
    assert failed and all(name in text for name in failed) and "FAIL" in text
    assert "Worst regressions" in text


def synthetic_report(tmp: Path) -> tuple[RunReport, list[dict]]:
    per = {"greet": {"f1": 0.9, "precision": 0.9, "recall": 0.9, "support": 5},
           HOSTILE: {"f1": 0.5, "precision": 0.5, "recall": 0.5, "support": 3}}
    per_active = {"greet": {"f1": 0.8, "precision": 0.8, "recall": 0.8, "support": 5},
                  HOSTILE: {"f1": 0.9, "precision": 0.9, "recall": 0.9, "support": 3}}
    report = RunReport(
        outcome="rejected", project="p", started_at="2026-01-01T00:00:00Z",
        candidate=ModelScores("model_b", None, {"intent_f1": 0.7, "per_intent": per, "entity_f1": 0.5}),
        active=ModelScores("model_a", None, {"intent_f1": 0.85, "per_intent": per_active, "entity_f1": 0.6}),
        decision=DecisionRecord(False, HOSTILE, [CheckResult("min_intent_f1", False, HOSTILE)]),
        warnings=[HOSTILE], data=DataInfo("sha256:x", train_examples=1, test_examples=2, intents=[HOSTILE]))
    report["live"] = {"messages": 4, "disagreement": 0.25, "disagreeing": 1, "source": "sqlite:///rasa.db",
                      "moves": [{"from": "greet", "to": HOSTILE, "count": 1, "examples": [HOSTILE]}],
                      "inbox": {"unique": 3, "training_examples": 1, "left_out": 0, "entries": [
                          {"text": HOSTILE, "count": 2, "intent": HOSTILE, "confidence": 0.31, "candidate_intent": "greet",
                           "priority": 0.8, "why": ["low confidence (0.31)", f"the candidate says {HOSTILE}"]}]}}
    rows = [{"text": HOSTILE, "intent": HOSTILE, "entities": [{"start": 0, "end": 8, "entity": HOSTILE}],
             "candidate": {"intent": "greet", "confidence": 0.6, "entities": []},
             "active": {"intent": HOSTILE, "confidence": 0.9, "entities": []}},
            {"text": "hello", "intent": "greet", "entities": [],
             "candidate": {"intent": "greet", "confidence": 0.95, "entities": []},
             "active": {"intent": HOSTILE, "confidence": 0.3, "entities": []}}]
    return report, rows


def test_user_data_is_text_never_markup(tmp_path):
    report, rows = synthetic_report(tmp_path)
    path = tmp_path / "page.html"
    path.write_text(page.render(report, rows))
    html = path.read_text()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html
    seen = browse(path)
    assert seen["scripts"] == 0 and seen["images"] == 0 and seen["dialogs"] == []
    assert seen["console_errors"] == [] and seen["page_errors"] == []
    assert HOSTILE in seen["text"]  # shown literally (utterance, entity errors, regressions, warnings)
    assert "missed" in seen["text"]
    # production messages (live agreement, inbox) are user data too: shown as text
    assert "Inbox: messages to annotate first" in seen["text"] and "Live agreement" in seen["text"]
    assert f"low confidence (0.31); the candidate says {HOSTILE}" in seen["text"]


def test_content_numbers():
    from nlu_ci.review import content

    report, rows = synthetic_report(Path("."))
    deltas = content.intent_deltas(report["candidate"], report["active"])
    assert deltas == [(HOSTILE, pytest.approx(-0.4)), ("greet", pytest.approx(0.1))]
    names, counts = content.confusion(rows, "active")
    assert names == sorted([HOSTILE, "greet"]) and sum(map(sum, counts)) == 2
    assert content.confidence_bins(rows, "candidate", 10) == ([0] * 9 + [1], [0] * 6 + [1] + [0] * 3)
    assert content.newly_wrong(rows) == (1, 1)
    [worst] = content.regressions(rows, deltas, intents=1)
    assert worst["intent"] == HOSTILE and worst["count"] == 1 and worst["examples"][0]["candidate"] == "greet"
    errors, kinds = content.entity_errors(rows)
    assert kinds == {"missed": 1} and errors[0]["problems"][0]["value"] == HOSTILE[:8]
    rows[1]["candidate"]["entities"] = [{"start": 0, "end": 5, "entity": "x", "confidence": 0.42}]
    rows[0]["candidate"]["entities"] = [{"start": 0, "end": 8, "entity": HOSTILE, "confidence": 0.97}]
    assert content.entity_confidence_bins(rows, "candidate", 10) == ([0] * 9 + [1], [0] * 4 + [1] + [0] * 5)
