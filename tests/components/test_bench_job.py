"""Issue 23's rows of the bench page: the configured bare fit follows the component's defaults, and the
job's targets are judged on medians (missed says missed)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_report  # noqa: E402
import measure  # noqa: E402

from nlu_ci.components.intent import LinearIntentClassifier  # noqa: E402


def _examples(tmp_path: Path) -> tuple[str, str]:
    rows = [{"text": f"{w} {v} please", "intent": i, "entities": []}
            for i, w in (("greet", "hello"), ("bye", "goodbye"), ("order", "buy")) for v in ("now", "today", "soon", "x")]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": rows}}), encoding="utf-8")
    return str(path), str(path)


def test_the_configured_fit_reads_the_components_defaults(tmp_path, monkeypatch):
    train, test = _examples(tmp_path)
    got = measure.sklearn_configured(train, test)["config"]
    assert got == {k: LinearIntentClassifier.defaults[k] for k in got}
    monkeypatch.setitem(LinearIntentClassifier.defaults, "char_ngrams", [2, 4])
    monkeypatch.setitem(LinearIntentClassifier.defaults, "C", 0.25)
    got = measure.sklearn_configured(train, test)["config"]
    assert (got["char_ngrams"], got["C"]) == ([2, 4], 0.25)


def _s(median: float) -> dict:
    return {"min": median * 0.9, "median": median, "max": median * 1.1, "n": 3}


def _job(size: int, run: float, fit: float, intent: float = 0.89, entity: float = 0.72) -> dict:
    return {"kind": "job", "name": "nlu-ci run", "size": size, "run_s": _s(run), "configured_s": _s(fit),
            "ratio_configured": _s(run / fit), "intent_f1": intent, "entity_f1": entity}


def _verdicts(rows: list[dict]) -> list[str]:
    meta = {"targets": dict(bench_report.TARGETS), "train_full": 9960}
    return [v for _, _, v in bench_report.targets_23(rows, meta)]


def test_issue_23_targets_are_met_on_medians_and_missed_otherwise():
    good = [_job(9960, 7.0, 5.0), _job(50000, 40.0, 30.0), _job(100000, 90.0, 70.0)]
    assert _verdicts(good) == [bench_report.MET] * 6
    bad = [_job(9960, 9.0, 5.0, intent=0.88, entity=0.70), _job(50000, 40.0, 30.0), _job(100000, 120.0, 70.0)]
    assert _verdicts(bad) == [bench_report.MISSED] * 6
    assert _verdicts([]) == [bench_report.NOT_MEASURED] * 6
