"""Relabelled examples in the nightly run (src/nlu_ci/check/held_out.py), through real `nlu-ci run` processes on a HWU64
cut (tests/support/rasa3_project.py: 6 intents x 60 -> growth with a new intent -> half of iot_coffee labelled
takeaway_order, on both sides of the split): the merge is judged by the labels the active model was judged by and
rejected, its relabels listed under data_diff; data growth still promotes; a label fix ships with the digest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from markupsafe import escape

from nlu_ci.check import held_out
from nlu_ci.report import document
from support import growth
from support.data import CONFIG, cli_env, run_cli
from support.rasa3_project import RELABEL_FROM, RELABEL_TO, day_steps, relabelled

pytestmark = pytest.mark.skipif(not growth.available(), reason="HWU64 is not in /work/shared/datasets")


def write(path: Path, examples: list[dict]) -> Path:
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}))
    return path


def run(models: Path, data: Path, *extra: str) -> dict:
    r = run_cli(["run", "--data", str(data), "--config", str(CONFIG), "--json", *extra], cli_env(models))
    assert r.code == 0, r.output
    return r.json


def active(models: Path) -> str:
    return (models / "default" / "ACTIVE").read_text().strip()


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    root = tmp_path_factory.mktemp("relabel")
    steps = day_steps()
    noisy, texts = relabelled(steps["growth"])
    files = {"base": write(root / "base.json", steps["base"]), "growth": write(root / "growth.json", steps["growth"]),
             "noisy": write(root / "noisy.json", noisy)}
    models = root / "models"
    reps = {"a": run(models, files["base"]), "b": run(models, files["growth"])}
    store_b = root / "store-b"  # the store with B active, before the merge (the tests below copy it)
    shutil.copytree(models, store_b, symlinks=True)
    reps["noisy"] = run(models, files["noisy"])
    return {"root": root, "files": files, "models": models, "store_b": store_b, "reps": reps, "texts": texts}


def from_b(day, name: str) -> Path:
    models = day["root"] / name
    shutil.copytree(day["store_b"], models, symlinks=True)
    return models


def test_data_growth_is_promoted_with_its_added_examples_and_no_relabels(day):
    a, b = day["reps"]["a"], day["reps"]["b"]
    assert a["outcome"] == "promoted" and "data_diff" not in a  # no active model: nothing to compare with
    assert b["outcome"] == "promoted", b["decision"]["reason"]
    diff = b["data_diff"]
    assert diff["relabelled"] == 0 and diff["held_out_relabelled"] == 0 and diff["digest"] is None, diff
    assert diff["added"] == len(day_steps()["growth"]) - len(day_steps()["base"]) and diff["removed"] == 0
    assert diff["reference_examples"] == a["data"]["examples"]  # A's training examples and held-out labels
    model = day["models"] / "default" / b["candidate"]["model"]
    recorded = json.loads((model / held_out.FILE).read_text())
    assert recorded["examples"] == b["data"]["test_examples"]
    assert held_out.FILE in json.loads((model / "nlu_ci.json").read_text())["files"]  # checksummed with the model


def test_a_merge_relabelling_half_an_intent_is_judged_by_the_active_labels_and_rejected(day):
    rep, b = day["reps"]["noisy"], day["reps"]["b"]
    diff = rep["data_diff"]
    assert diff["relabelled"] == len(day["texts"]) and diff["added"] == 0 and diff["removed"] == 0, diff
    assert {r["text"] for r in diff["relabelled_examples"]} == day["texts"]
    assert {(r["old_intent"], r["new_intent"]) for r in diff["relabelled_examples"]} == {(RELABEL_FROM, RELABEL_TO)}
    held = [r["text"] for r in diff["relabelled_examples"] if r["held_out"]]
    assert len(held) == diff["held_out_relabelled"] >= 1 and diff["judged_by"] == "the active model's labels"
    # the gate's test set (the predictions file) carries B's label for each relabelled held-out text
    rows = {r["text"]: r for r in map(json.loads, Path(rep["predictions_file"]).read_text().splitlines())}
    assert {rows[t]["intent"] for t in held} == {RELABEL_FROM}
    assert diff["held_out"]["examples"] == len(held)  # scored apart with the new labels, for the record
    assert diff["held_out"]["active"]["intent_accuracy"] == 0.0  # B never says takeaway_order for them
    print(f"\nmerged relabels: candidate {rep['candidate']['intent_f1']:.4f} vs active {rep['active']['intent_f1']:.4f}"
          f" ({len(held)} of {len(day['texts'])} relabelled held out)")
    assert rep["outcome"] == "rejected", rep["decision"]["reason"]
    assert active(day["models"]) == b["candidate"]["model"]
    assert any(f"--accept-relabels {diff['digest']}" in w for w in rep["warnings"]), rep["warnings"]
    page = Path(rep["review_page"]["path"]).read_text()  # the review page lists them, held out or not
    assert 'id="relabelled"' in page and all(str(escape(t)) in page for t in day["texts"])
    assert f"relabels  {len(day['texts'])} examples relabelled ({len(held)} held out" in document.summary(rep)


def test_accepting_exactly_those_relabels_ships_the_label_fix(day):
    digest = day["reps"]["noisy"]["data_diff"]["digest"]
    models = from_b(day, "accepted")
    rep = run(models, day["files"]["noisy"], "--accept-relabels", digest[:20])
    diff = rep["data_diff"]
    assert diff["accepted"] is True and diff["judged_by"] == "the data's labels (--accept-relabels)", diff
    rows = {r["text"]: r for r in map(json.loads, Path(rep["predictions_file"]).read_text().splitlines())}
    held = [r["text"] for r in diff["relabelled_examples"] if r["held_out"]]
    assert {rows[t]["intent"] for t in held} == {RELABEL_TO}  # judged by the new labels
    assert rep["outcome"] == "promoted", rep["decision"]["reason"]
    # the promoted model records the new labels: the next run on that data (and one more example) finds none
    noisy = json.loads(day["files"]["noisy"].read_text())["rasa_nlu_data"]["common_examples"]
    more = write(day["root"] / "noisy-plus1.json", noisy + [{"text": "make me a flat white please", "intent": RELABEL_FROM}])
    after = run(models, more, "--dry-run")
    assert after["data_diff"]["relabelled"] == 0 and after["data_diff"]["added"] == 1, after["data_diff"]


def test_a_digest_of_other_relabels_accepts_nothing(day):
    models = from_b(day, "mismatch")
    rep = run(models, day["files"]["noisy"], "--accept-relabels", "sha256:" + "0" * 16, "--dry-run")
    diff = rep["data_diff"]
    assert diff["accepted"] is False and diff["judged_by"] == "the active model's labels", diff
    assert any("does not match these relabels" in w for w in rep["warnings"]), rep["warnings"]
    assert rep["decision"]["promote"] is False, rep["decision"]["reason"]


def test_guard_keeps_the_reference_label_unless_the_digest_is_accepted():
    ref = held_out.Reference("model_x", labels={held_out.key("Book a taxi"): "transport_taxi",
                                                held_out.key("gone"): "weather_query"},
                             texts={held_out.key("gone"): "gone"}, held_out_recorded=True)
    today = [{"text": "book a  TAXI", "intent": "transport_ticket"}, {"text": "new one", "intent": "alarm_set"}]
    g = held_out.guard(ref, today, [today[0]])
    assert g.test == [{"text": "book a  TAXI", "intent": "transport_taxi"}] and g.apart == [today[0]]
    assert (g.section["added"], g.section["removed"], g.section["relabelled"]) == (1, 1, 1)
    assert g.section["removed_examples"] == [{"text": "gone", "intent": "weather_query"}]
    ok = held_out.guard(ref, today, [today[0]], accept=g.section["digest"][:15])
    assert ok.test == [today[0]] and ok.section["accepted"] is True
    short = held_out.guard(ref, today, [today[0]], accept=g.section["digest"][:14])  # too short to name relabels
    assert short.section["accepted"] is False and short.test[0]["intent"] == "transport_taxi"


def test_a_pull_request_check_judges_relabels_the_same_and_cannot_accept_them(day):
    """`nlu-ci check` without --base-data: the pipeline's own data_diff (the active model's recorded labels), and
    NLU_CI_ACCEPT_RELABELS from the environment is ignored: exit 3, nothing accepted."""
    digest = day["reps"]["noisy"]["data_diff"]["digest"]
    models = from_b(day, "check")
    r = run_cli(["check", "--data", str(day["files"]["noisy"]), "--config", str(CONFIG), "--json"],
                cli_env(models, NLU_CI_ACCEPT_RELABELS=digest))
    assert r.code == 3, r.output
    diff = r.json["data_diff"]
    assert diff["accepted"] is False and diff["held_out_relabelled"] >= 1 and diff["relabelled"] == len(day["texts"])
    assert diff["judged_by"] == "the active model's labels", diff
