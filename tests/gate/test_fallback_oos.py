"""The fallback threshold on CLINC150-style data cut from HWU64 (CC BY 4.0, see /work/shared/datasets/hwu64/README.md):
8 intents in scope, 2 whole intents labelled ``out_of_scope`` in the data (as CLINC150's ``oos`` class) and 2 more
intents never seen, given as ``--out-of-scope`` messages. Real ``nlu-ci run`` processes; every number the report
gives is recomputed here from the per-example predictions (the predictions file, and the stored models loaded
with rasa_nlu's own ``Interpreter`` for the out-of-scope file)."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from support.data import cli_env, run_cli, shuffled_train_labels, write_data
from support.growth import HWU64

IN_SCOPE = ["alarm_set", "weather_query", "play_music", "calendar_set", "email_query", "news_query",
            "cooking_recipe", "transport_ticket"]
OOS_IN_DATA = ["general_joke", "qa_factoid"]   # labelled out_of_scope in the data: the test split holds some
OOS_FILE = ["datetime_query", "lists_createoradd"]  # never trained on: the --out-of-scope file
PER_INTENT = 60
INTENT_ONLY = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: SklearnIntentClassifier
"""
LOOSE = ("non_inferiority_margin: off\nsignificance: off\nbootstrap: off\nper_intent_max_drop: off\n"
         "entity_f1: off\n")  # only the fallback check can reject


def _hwu64() -> dict[str, list[dict]]:
    if not HWU64.is_file():
        pytest.skip(f"HWU64 not on disk ({HWU64})")
    by_intent = defaultdict(list)
    for e in json.loads(HWU64.read_text())["rasa_nlu_data"]["common_examples"]:
        if e["text"] not in {x["text"] for x in by_intent[e["intent"]]}:
            by_intent[e["intent"]].append({"text": e["text"], "intent": e["intent"], "entities": []})
    return by_intent


@pytest.fixture(scope="module")
def clinc(tmp_path_factory) -> dict:
    """Run A (flags): trains and promotes model A. Run B (env vars, dry run): a candidate trained on the same texts
    with 45 % of its training labels shuffled, judged against A with ``fallback.max_coverage_drop: 0.05``."""
    base = tmp_path_factory.mktemp("clinc")
    hwu = _hwu64()
    examples = [e for i in IN_SCOPE for e in hwu[i][:PER_INTENT]]
    examples += [dict(e, intent="out_of_scope") for i in OOS_IN_DATA for e in hwu[i][:PER_INTENT // 2]]
    data = write_data(base / "clinc.json", examples)
    noisy = write_data(base / "noisy.json", shuffled_train_labels(examples, 0.45, seed=1))
    oos = base / "oos.txt"
    oos_texts = [e["text"] for i in OOS_FILE for e in hwu[i][:25]]
    oos.write_text("# out-of-scope messages, one per line\n\n" + "\n".join(oos_texts) + "\n")
    (base / "config.yml").write_text(INTENT_ONLY)
    (base / "gate.yml").write_text(LOOSE + "fallback: {target_precision: 0.9, max_coverage_drop: 0.05}\n")
    env = cli_env(base / "models", NLU_CI_CONFIG=str(base / "config.yml"))
    a = run_cli(["run", "--data", str(data), "--out-of-scope", str(oos), "--json"], env)
    assert a.code == 0 and a.json["outcome"] == "promoted", a.output
    env_b = dict(env, NLU_CI_OUT_OF_SCOPE=str(oos), NLU_CI_POLICY=str(base / "gate.yml"), NLU_CI_DRY_RUN="1")
    b = run_cli(["run", "--data", str(noisy), "--json"], env_b)
    assert b.code == 0 and b.json["outcome"] == "dry_run", b.output
    return {"a": a.json, "b": b.json, "oos_texts": oos_texts, "base": base, "env": env, "data": data}


def _predictions(report: dict) -> list[dict]:
    return [json.loads(line) for line in Path(report["predictions_file"]).read_text().splitlines()]


def _interpreter(model_dir: str):
    from rasa_nlu.model import Interpreter

    import nlu_ci.engine  # noqa: F401  (the compat shims before rasa_nlu)

    return Interpreter.load(model_dir)


def _file_predictions(model_dir: str, texts: list[str]) -> list[tuple[str | None, float]]:
    interpreter = _interpreter(model_dir)
    out = []
    for text in texts:
        intent = interpreter.parse(text).get("intent") or {}
        out.append((intent.get("name"), float(intent.get("confidence") or 0.0)))
    return out


def _answered(intent, confidence, t) -> bool:
    return intent not in (None, "out_of_scope") and confidence >= t


def _precision_coverage(rows: list[dict], role: str, file_preds, t: float) -> tuple[float, float, int]:
    inside = [r for r in rows if r["intent"] != "out_of_scope"]
    answered = [r for r in inside if _answered(r[role]["intent"], r[role]["confidence"], t)]
    right = sum(r[role]["intent"] == r["intent"] for r in answered)
    oos = sum(_answered(r[role]["intent"], r[role]["confidence"], t) for r in rows if r["intent"] == "out_of_scope")
    oos += sum(_answered(i, c, t) for i, c in file_preds)
    return right / (len(answered) + oos), len(answered) / len(inside), oos


def test_the_recommended_threshold_reaches_the_target_precision_on_held_out_data(clinc):
    report = clinc["a"]
    fb, rows = report["fallback"], _predictions(report)
    assert fb["target_precision"] == 0.9 and fb["threshold"] == 0.3
    assert fb["out_of_scope_sources"]["test_data"] == sum(r["intent"] == "out_of_scope" for r in rows) > 0
    assert fb["out_of_scope_sources"]["file"] == len(clinc["oos_texts"])
    assert fb["in_scope"] == sum(r["intent"] != "out_of_scope" for r in rows)
    file_preds = _file_predictions(report["candidate"]["path"], clinc["oos_texts"])
    rec = fb["candidate"]["recommended"]
    assert rec["reached"] and rec["threshold"] is not None
    precision, coverage, oos = _precision_coverage(rows, "candidate", file_preds, rec["threshold"])
    assert precision >= 0.9 and precision == pytest.approx(rec["precision"])
    assert coverage == pytest.approx(rec["coverage"]) and oos == rec["out_of_scope_answered"]
    # the lowest such threshold: one step lower (the next lower confidence among the answers) misses the target
    confidences = sorted({r["candidate"]["confidence"] for r in rows if r["candidate"]["intent"] != "out_of_scope"}
                         | {c for i, c in file_preds if i != "out_of_scope"})
    lower = [c for c in confidences if c < rec["threshold"]]
    if lower:
        assert _precision_coverage(rows, "candidate", file_preds, lower[-1])[0] < 0.9
    # at the policy threshold (as the assistant acts today): the out-of-scope messages it would answer
    precision, coverage, oos = _precision_coverage(rows, "candidate", file_preds, 0.3)
    assert fb["candidate"]["out_of_scope_answered"] == oos
    assert fb["candidate"]["coverage"] == pytest.approx(coverage) and fb["candidate"]["precision"] == pytest.approx(precision)


def test_both_models_out_of_scope_counts_match_a_count_done_here(clinc):
    a, b = clinc["a"], clinc["b"]
    rows = _predictions(b)
    assert b["active"]["model"] == a["candidate"]["model"]
    active_file = _file_predictions(a["candidate"]["path"], clinc["oos_texts"])
    for role, file_preds in (("active", active_file),):
        for t, part in ((0.3, b["fallback"][role]), (b["fallback"][role]["recommended"]["threshold"],
                                                       b["fallback"][role]["recommended"])):
            precision, coverage, oos = _precision_coverage(rows, role, file_preds, t)
            assert part["out_of_scope_answered"] == oos and part["coverage"] == pytest.approx(coverage)
    # the same model on the same held-out texts and file: the same numbers as when it was the candidate
    assert b["fallback"]["active"] == a["fallback"]["candidate"]
    # the candidate of a dry run is not stored: its out-of-scope count at the policy threshold, from the
    # held-out predictions and the file's share (the report's total minus the held-out part is the file's)
    held_out = sum(_answered(r["candidate"]["intent"], r["candidate"]["confidence"], 0.3)
                   for r in rows if r["intent"] == "out_of_scope")
    assert held_out <= b["fallback"]["candidate"]["out_of_scope_answered"] <= held_out + len(clinc["oos_texts"])


def test_the_gate_rejects_a_candidate_whose_coverage_drops(clinc):
    b = clinc["b"]
    fb = b["fallback"]
    drop = fb["active"]["recommended"]["coverage"] - fb["candidate"]["recommended"]["coverage"]
    assert drop > 0.05, fb  # the precondition: shuffled training labels cost coverage at precision 0.9
    check = next(c for c in b["decision"]["checks"] if c["name"] == "fallback_coverage")
    assert check["enabled"] and not check["passed"] and check["values"]["drop"] == pytest.approx(drop)
    assert b["decision"]["promote"] is False and b["decision"]["reason"].startswith("fallback_coverage:")
    assert [c["name"] for c in b["decision"]["checks"] if c["enabled"] and not c["passed"]] == ["fallback_coverage"]


def test_by_default_the_coverage_check_only_reports(clinc):
    a = clinc["a"]
    check = next(c for c in a["decision"]["checks"] if c["name"] == "fallback_coverage")
    assert check["enabled"] is False and check["passed"] is True  # no active model yet, and off by default
    env = dict(clinc["env"], NLU_CI_POLICY=str(clinc["base"] / "loose.yml"), NLU_CI_DRY_RUN="1")
    (clinc["base"] / "loose.yml").write_text(LOOSE)
    noisy = clinc["base"] / "noisy.json"
    r = run_cli(["run", "--data", str(noisy), "--report", str(clinc["base"] / "loose.json")], env)
    assert r.code == 0, r.output
    report = json.loads((clinc["base"] / "loose.json").read_text())
    check = next(c for c in report["decision"]["checks"] if c["name"] == "fallback_coverage")
    assert check["enabled"] is False and check["detail"].startswith("report only") and report["decision"]["promote"]
    fb = report["fallback"]
    assert fb["out_of_scope_sources"]["file"] == 0  # no --out-of-scope: the data's intent only
    # the human summary: one line per model, as the assistant acts and at the target precision
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("candidate answers"))
    rec = fb["candidate"]["recommended"]
    assert f"{fb['candidate']['out_of_scope_answered']} out-of-scope answered" in line
    assert f"threshold {rec['threshold']:.3f} for precision 0.9: answers {100 * rec['coverage']:.1f}%" in line


def test_the_review_page_shows_both_models_fallback_numbers(clinc):
    b = clinc["b"]
    page = Path(b["review_page"]["path"]).read_text()
    section = page[page.index('id="fallback"'):page.index('id="checks"')]
    for role in ("candidate", "active"):
        rec = b["fallback"][role]["recommended"]
        assert f"{rec['threshold']:.3f}" in section and f"{100 * rec['coverage']:.1f}%" in section
    assert f"(of {b['fallback']['out_of_scope']})" in section


@pytest.mark.parametrize("content, needle", [
    (None, "out-of-scope file (--out-of-scope / NLU_CI_OUT_OF_SCOPE) not found"),
    ('{"rasa_nlu_data": {"common_examples": [{"text": "hi"', "malformed JSON"),
    ("# only a comment\n\n", "holds no message"),
    (b"caf\xe9 au lait\n", "not UTF-8"),
])
def test_a_bad_out_of_scope_file_is_one_line_and_exit_2(clinc, tmp_path, content, needle):
    path = tmp_path / ("oos.json" if isinstance(content, str) and content.startswith("{") else "oos.txt")
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    store = clinc["base"] / "models" / "default"
    before = (store / "ACTIVE").read_text()
    r = run_cli(["run", "--data", str(clinc["data"])], dict(clinc["env"], NLU_CI_OUT_OF_SCOPE=str(path)))
    assert r.code == 2, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert needle in last and str(path) in last and "Traceback" not in r.stderr
    assert "stage train" not in r.stderr  # refused before anything is trained
    assert (store / "ACTIVE").read_text() == before


if __name__ == "__main__":  # the numbers of one run, for the docs: PYTHONPATH=src:tests python tests/gate/test_fallback_oos.py
    import tempfile

    class _Factory:
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=name))

    found = clinc.__wrapped__(_Factory())
    for run in ("a", "b"):
        fb = found[run]["fallback"]
        print(run, json.dumps({k: fb[k] for k in ("threshold", "target_precision", "in_scope", "out_of_scope")}))
        for role in ("candidate", "active"):
            print(" ", role, json.dumps(fb[role], sort_keys=True))
