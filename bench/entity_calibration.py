"""Entity confidences of the default pipeline (nlu_config.yml) before and after calibration, on HWU64.

Trains the shipped pipeline twice on HWU64's training set (X. Liu et al., IWSDS 2019; CC BY 4.0; 9,960
examples), once with ``LeanCRFEntityExtractor``'s ``calibration: none`` (its raw score, the smallest token
marginal: "before") and once as shipped ("after"), and scores both on HWU64's test set (1,076). An entity
prediction is correct when a gold entity has the same span and type. Prints one JSON document:

    .venv/bin/python bench/entity_calibration.py [--data-dir DIR] [--methods none,platt,isotonic] > out.json
        [--md docs/bench/entity_calibration.md]     # also the page (`make bench-entities`)

Per method: entity F1, expected calibration error of entity confidences (15 equal-width bins), median
confidence on correct and on wrong entities, share of correct entities at >= 0.5, training seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

import nlu_ci.engine  # noqa: F401  (rasa_nlu compat shims first)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from journal import commit  # noqa: E402  (short HEAD, "+dirty" when measured code or config differs)

ROOT = Path(__file__).resolve().parents[1]
HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
EXTRACTOR = "nlu_ci.components.LeanCRFEntityExtractor"


def config_with(method: str, out: Path) -> Path:
    """nlu_config.yml with the entity extractor's ``calibration`` set to ``method``."""
    cfg = yaml.safe_load((ROOT / "nlu_config.yml").read_text(encoding="utf-8"))
    for component in cfg["pipeline"]:
        if component.get("name") == EXTRACTOR:
            component["calibration"] = method
    out.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return out


def entity_pairs(test: list[dict], predictions: list[dict]) -> tuple[list[float], list[bool], int]:
    """(confidence, correct) of every predicted entity, and the number of gold entities."""
    confidences, correct, gold_total = [], [], 0
    for example, prediction in zip(test, predictions, strict=True):
        gold = {(e["start"], e["end"], e["entity"]) for e in example.get("entities") or []}
        gold_total += len(gold)
        for e in prediction.get("entities") or []:
            if e.get("extractor") not in (None, "LeanCRFEntityExtractor") or e.get("confidence") is None:
                continue
            confidences.append(float(e["confidence"]))
            correct.append((e["start"], e["end"], e["entity"]) in gold)
    return confidences, correct, gold_total


def measure(method: str, data_dir: Path, tmp: Path) -> dict:
    from rasa_nlu.training_data import load_data

    from nlu_ci.components.calibration import expected_calibration_error
    from nlu_ci.engine.model import Model
    from nlu_ci.engine.training import train

    test = json.loads((data_dir / "test.json").read_text(encoding="utf-8"))["rasa_nlu_data"]["common_examples"]
    t0 = time.perf_counter()
    model_dir = train(config_with(method, tmp / f"{method}.yml"), load_data(str(data_dir / "train.json")),
                      tmp / f"model-{method}")
    train_s = time.perf_counter() - t0
    predictions = Model(model_dir).predict([e["text"] for e in test])
    conf, correct, gold_total = entity_pairs(test, predictions)
    right = [c for c, ok in zip(conf, correct, strict=True) if ok]
    wrong = [c for c, ok in zip(conf, correct, strict=True) if not ok]
    precision = len(right) / len(conf) if conf else 0.0
    recall = len(right) / gold_total if gold_total else 0.0
    return {
        "calibration": method,
        "entities_predicted": len(conf), "entities_correct": len(right), "gold_entities": gold_total,
        "entity_f1_exact": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "entity_ece": round(expected_calibration_error(conf, correct), 4),
        "median_confidence_correct": round(statistics.median(right), 4) if right else None,
        "median_confidence_wrong": round(statistics.median(wrong), 4) if wrong else None,
        "share_correct_at_0_5": round(sum(c >= 0.5 for c in right) / len(right), 4) if right else None,
        "train_s": round(train_s, 2),
    }


HWU64_CREDIT = " (HWU64 fold 1: X. Liu, A. Eshghi, P. Swietojanski, V. Rieser, IWSDS 2019; CC BY 4.0)"
COLUMNS = (("entity_f1_exact", "entity F1 (exact span)", ".4f"), ("entity_ece", "ECE (15 bins)", ".4f"),
           ("median_confidence_correct", "median confidence, right entities", ".4f"),
           ("median_confidence_wrong", "median confidence, wrong entities", ".4f"),
           ("share_correct_at_0_5", "right entities at >= 0.5", ".1%"), ("train_s", "train s", ".1f"))


def markdown(out: dict) -> str:
    """The page: one run's JSON as a table (no number written by hand)."""
    head = ("| calibration | entities predicted / right / gold | "
            + " | ".join(label for _, label, _ in COLUMNS) + " |")
    lines = ["# Entity confidence before and after calibration", "",
             f"Written by one run of `{out['command']}` (`make bench-entities`) at commit `{out['commit']}`, "
             f"started {out['started']}, on {out['cpus']} CPUs (Python {out['python']}); 1-minute load average "
             f"{out['load_1min'][0]:.2f} at the start and {out['load_1min'][1]:.2f} at the end. Data: "
             f"`{out['dataset']}`{HWU64_CREDIT if out['dataset'] == 'hwu64' else ''}; pipeline `{out['config']}`, "
             f"which ships with `calibration: {out['shipped_calibration']}`. `none` is the raw score (the CRF's "
             "smallest token marginal); an entity is right when a gold entity has the same span and type. The "
             "same numbers as JSON: `entity_calibration.json`.", "", head,
             "|---|---|" + "---:|" * len(COLUMNS)]
    for r in out["results"]:
        cells = [r["calibration"], f"{r['entities_predicted']} / {r['entities_correct']} / {r['gold_entities']}"]
        cells += ["–" if r[key] is None else format(r[key], spec) for key, _, spec in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HWU64, help="a folder with train.json and test.json")
    parser.add_argument("--methods", default="none,platt,isotonic",
                        help="calibration methods to compare (none = before)")
    parser.add_argument("--md", type=Path, help="also write the results as a Markdown page here")
    args = parser.parse_args(argv)
    started, load_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="nlu-ci-entity-cal-") as tmp:
        rows = [measure(method, args.data_dir, Path(tmp)) for method in methods]
    shipped = yaml.safe_load((ROOT / "nlu_config.yml").read_text(encoding="utf-8"))
    default = next((c.get("calibration", "platt") for c in shipped["pipeline"] if c.get("name") == EXTRACTOR), None)
    out = {"command": " ".join(["bench/entity_calibration.py", *(argv if argv is not None else sys.argv[1:])]),
           "dataset": args.data_dir.name, "config": "nlu_config.yml", "shipped_calibration": default,
           "python": platform.python_version(), "cpus": os.cpu_count(), "commit": commit(), "started": started,
           "load_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)], "results": rows}
    if args.md:
        args.md.write_text(markdown(out), encoding="utf-8")
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
