"""LinearIntentClassifier options measured side by side on HWU64: fit seconds and intent F1 per variant.

    .venv/bin/python bench/intent_options.py [--repeats 3] [--size N] [--md FILE]

Each variant is fitted ``--repeats`` times in this process, interleaved (variant A, B, C, A, B, C, ...) so
that machine load hits them alike; the table gives median (min-max) seconds, intent weighted F1 on HWU64's
test set (deterministic: the same for every repeat) and the number of features. ``--size`` synthesises a
larger training set the way ``make bench`` does (bench/bench_data.py) to see the solver's size step.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)

ROOT = Path(__file__).resolve().parents[1]
HWU64 = ROOT.parent / "shared" / "datasets" / "hwu64"
VARIANTS = {
    "before (char 2-5, tol 1e-4, dual auto)": {"char_ngrams": [2, 5], "tol": 1e-4, "dual": "auto"},
    "char 2-5, tol 1e-4, dual": {"char_ngrams": [2, 5], "tol": 1e-4},
    "char 3-5, tol 1e-4, dual": {"tol": 1e-4},
    "default (char 3-5, tol 0.1, dual)": {},
    "char 3-4, tol 0.1, dual": {"char_ngrams": [3, 4]},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=0, help="synthesise this many training examples (0: HWU64's 9,960)")
    ap.add_argument("--md", type=Path, help="also write the table as Markdown here")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_data import read_examples, synthesise
    from rasa_nlu.training_data import Message, TrainingData
    from sklearn.metrics import f1_score

    from nlu_ci.components.intent import LinearIntentClassifier

    train = read_examples(HWU64 / "train.json")
    if args.size:
        train = synthesise(train, args.size)
    test = read_examples(HWU64 / "test.json")
    data = TrainingData([Message(e["text"], {"intent": e["intent"]}) for e in train])
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    scores: dict[str, tuple[float, int]] = {}
    for _ in range(args.repeats):
        for name, options in VARIANTS.items():
            clf = LinearIntentClassifier(dict(LinearIntentClassifier.defaults, **options))
            t0 = time.perf_counter()
            clf.train(data)
            times[name].append(time.perf_counter() - t0)
            predicted = [clf.classes[i] for i in clf.predict_proba([e["text"] for e in test]).argmax(axis=1)]
            f1 = f1_score([e["intent"] for e in test], predicted, average="weighted")
            scores[name] = (round(float(f1), 4), clf.features.n_features)
    rows = [{"variant": n, "median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
             "intent_f1": scores[n][0], "features": scores[n][1], "n": len(t)} for n, t in times.items()]
    lines = [f"LinearIntentClassifier on HWU64, {len(train):,} training examples, {len(test):,} test; "
             f"{args.repeats} interleaved repeats (`python bench/intent_options.py --repeats {args.repeats}"
             f"{f' --size {args.size}' if args.size else ''}`)", "",
             "| variant | fit s, median (min-max) | intent F1 | features |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['median_s']:.2f} ({r['min_s']:.2f}-{r['max_s']:.2f}) | {r['intent_f1']:.4f} "
              f"| {r['features']:,} |" for r in rows]
    print(json.dumps(rows))
    print("\n".join(lines), file=sys.stderr)
    if args.md:
        args.md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
