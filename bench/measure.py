"""One benchmark measurement in this process; `run_bench.py` starts this file once per repeat.

    python bench/measure.py one --pipeline nlu_ci_intent --train T.json --test T.json [--config C]
    python bench/measure.py bare --config C --train T.json --test T.json
    python bench/measure.py sklearn --train T.json --test T.json
    python bench/measure.py sklearn-configured --train T.json --test T.json
    python bench/measure.py order --train T.json --test T.json --seed S

Each prints one JSON line. Everything here (with the nlu_ci package, the config and the data files)
is covered by the fingerprint that decides whether a journal row may be reused (bench/journal.py).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PIPELINES: dict[str, list[dict] | str] = {
    # (a) rasa_nlu's own components
    "classic_intent": [{"name": "WhitespaceTokenizer"}, {"name": "CountVectorsFeaturizer"},
                       {"name": "SklearnIntentClassifier"}],
    "classic_entities": [{"name": "WhitespaceTokenizer"}, {"name": "CRFEntityExtractor"}],
    # (b) nlu-ci's components
    "nlu_ci_intent": [{"name": "nlu_ci.components.LinearIntentClassifier"}],
    "nlu_ci_entities": [{"name": "WhitespaceTokenizer"}, {"name": "nlu_ci.components.LeanCRFEntityExtractor"}],
    "nlu_ci_default": "config",              # the default config file, --config (intents + entities)
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def fastest(fn, repeats: int = 3, budget_s: float = 20.0):
    """(result, fastest seconds) of up to ``repeats`` calls of a quick ``fn``, stopping once ``budget_s`` is spent."""
    best, spent, result = float("inf"), 0.0, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        took = time.perf_counter() - t0
        best, spent = min(best, took), spent + took
        if spent > budget_s:
            break
    return result, best


def _compat_shims() -> None:
    """nlu_ci.engine patches rasa_nlu 0.15 for this Python; import it before any rasa_nlu module."""
    import nlu_ci.engine  # noqa: F401, PLC0415


def _test_examples(test_path: str) -> list[dict]:
    with open(test_path, encoding="utf-8") as fh:
        return json.load(fh)["rasa_nlu_data"]["common_examples"]


def measure(pipeline: str, train_path: str, test_path: str, config: str | None = None) -> dict:
    """Train ``pipeline`` on ``train_path``, then time batched and per-message evaluation on ``test_path``."""
    _compat_shims()
    from rasa_nlu import config as rasa_config  # noqa: PLC0415
    from rasa_nlu.model import Trainer  # noqa: PLC0415
    from rasa_nlu.training_data import load_data  # noqa: PLC0415

    from nlu_ci.components.calibration import expected_calibration_error  # noqa: PLC0415
    from nlu_ci.engine.batch import predict_batch  # noqa: PLC0415
    from nlu_ci.engine.predict import load_model, predict_each  # noqa: PLC0415
    from nlu_ci.evaluation import evaluate  # noqa: PLC0415

    spec = PIPELINES[pipeline]
    if isinstance(spec, str):
        cfg = rasa_config.load(config or str(ROOT / "nlu_config.yml"))
    else:
        cfg = rasa_config.RasaNLUModelConfig({"language": "en", "pipeline": [dict(c) for c in spec]})
    train = load_data(train_path)
    test = _test_examples(test_path)
    texts = [e["text"] for e in test]
    trainer = Trainer(cfg)
    t0 = time.perf_counter()
    trainer.train(train)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        interpreter = load_model(trainer.persist(tmp, fixed_model_name="m"))
    batched, batch_s = fastest(lambda: predict_batch(interpreter, texts))
    each, each_s = fastest(lambda: predict_each(interpreter, texts))
    row = {"train_examples": len(train.training_examples), "train_s": round(train_s, 3),
           "eval_batch_ups": round(len(texts) / batch_s, 1) if batched is not None else None,
           "eval_each_ups": round(len(texts) / each_s, 1),
           "batch_equals_each": (batched == each) if batched is not None else None}
    provides = {p for c in interpreter.pipeline for p in (c.provides or [])}
    result = evaluate(test, each)
    row["intent_f1"] = round(result.intent_f1, 4) if "intent" in provides else None
    row["entity_f1"] = round(result.entity_f1, 4) if "entities" in provides and result.entity_f1 is not None else None
    row["intent_ece"] = (round(expected_calibration_error([p["confidence"] for p in each],
                                                          [u["correct"] for u in result.utterances]), 4)
                         if "intent" in provides else None)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return row


def bare(config: str, train_path: str, test_path: str) -> dict:
    """What `nlu-ci run` must do at the least: load data, train, persist, load, predict, evaluate."""
    t0 = time.perf_counter()
    _compat_shims()
    from rasa_nlu import config as rasa_config  # noqa: PLC0415
    from rasa_nlu.model import Trainer  # noqa: PLC0415
    from rasa_nlu.training_data import load_data  # noqa: PLC0415

    from nlu_ci.engine.predict import load_model, predict  # noqa: PLC0415
    from nlu_ci.evaluation import evaluate  # noqa: PLC0415

    trainer = Trainer(rasa_config.load(config))
    trainer.train(load_data(train_path))
    with tempfile.TemporaryDirectory() as tmp:
        interpreter = load_model(trainer.persist(tmp, fixed_model_name="m"))
        test = _test_examples(test_path)
        result = evaluate(test, predict(interpreter, [e["text"] for e in test]))
    return {"in_process_s": round(time.perf_counter() - t0, 3), "intent_f1": round(result.intent_f1, 4)}


def sklearn_fit(train_path: str, test_path: str) -> dict:
    """The floor for intent training: a bare scikit-learn TF-IDF (word 1-2 + char 2-5 n-grams) LinearSVC."""
    t0 = time.perf_counter()
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.metrics import f1_score  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline, make_union  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    train, test = _test_examples(train_path), _test_examples(test_path)
    model = make_pipeline(
        make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        LinearSVC())
    model.fit([e["text"] for e in train], [e["intent"] for e in train])
    predicted = model.predict([e["text"] for e in test])
    f1 = f1_score([e["intent"] for e in test], predicted, average="weighted")
    return {"in_process_s": round(time.perf_counter() - t0, 3), "intent_f1": round(float(f1), 4),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def sklearn_configured(train_path: str, test_path: str) -> dict:
    """The bare scikit-learn fit configured as the default LinearIntentClassifier: its n-gram ranges, min_df,
    C, tol, dual and max_iter read from the component's ``defaults`` (so this floor follows them), no
    calibration folds, no job around it."""
    t0 = time.perf_counter()
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415
    from sklearn.metrics import f1_score  # noqa: PLC0415
    from sklearn.pipeline import make_pipeline, make_union  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    _compat_shims()
    from nlu_ci.components.intent import LinearIntentClassifier  # noqa: PLC0415
    from nlu_ci.components.ngrams import WORD_PATTERN  # noqa: PLC0415

    d = LinearIntentClassifier.defaults
    train, test = _test_examples(train_path), _test_examples(test_path)
    min_df = int(d["min_df"]) if len(train) >= 4 * int(d["min_df"]) else 1      # as NgramFeatures.fit
    vec = {"min_df": min_df, "max_features": d["max_features"], "sublinear_tf": True, "lowercase": True}
    model = make_pipeline(
        make_union(TfidfVectorizer(analyzer="word", ngram_range=tuple(d["word_ngrams"]), token_pattern=WORD_PATTERN,
                                   **vec),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(d["char_ngrams"]), **vec)),
        LinearSVC(C=float(d["C"]), tol=float(d["tol"]), dual=d["dual"], max_iter=int(d["max_iter"]),
                  random_state=d["random_state"]))
    model.fit([e["text"] for e in train], [e["intent"] for e in train])
    predicted = model.predict([e["text"] for e in test])
    f1 = f1_score([e["intent"] for e in test], predicted, average="weighted")
    config = {k: d[k] for k in ("word_ngrams", "char_ngrams", "min_df", "C", "tol", "dual", "max_iter")}
    return {"in_process_s": round(time.perf_counter() - t0, 3), "intent_f1": round(float(f1), 4),
            "peak_rss_mb": round(peak_rss_mb(), 1), "config": config}


def order(train_path: str, test_path: str, seed: int, config: str) -> dict:
    """Entity F1 of the default config trained on a seeded shuffle of ``train_path``, twice: in that order
    (rasa_nlu's own Trainer) and through the job's training (``engine.training.train``, canonical order)."""
    import random  # noqa: PLC0415

    _compat_shims()
    from rasa_nlu import config as rasa_config  # noqa: PLC0415
    from rasa_nlu.model import Trainer  # noqa: PLC0415
    from rasa_nlu.training_data import load_data  # noqa: PLC0415

    from nlu_ci.engine import training  # noqa: PLC0415
    from nlu_ci.engine.predict import load_model, predict  # noqa: PLC0415
    from nlu_ci.evaluation import evaluate  # noqa: PLC0415

    examples = _test_examples(train_path)
    random.Random(seed).shuffle(examples)
    test = _test_examples(test_path)
    out: dict = {"seed": seed}
    with tempfile.TemporaryDirectory() as tmp:
        shuffled = Path(tmp) / "train.json"
        shuffled.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}), encoding="utf-8")
        data = load_data(str(shuffled))
        trainer = Trainer(rasa_config.load(config))
        trainer.train(data)
        paths = {"as_given": trainer.persist(tmp, fixed_model_name="given"),
                 "job": training.train(config, data, Path(tmp) / "job")}
        for key, path in paths.items():
            result = evaluate(test, predict(load_model(str(path)), [e["text"] for e in test]))
            out[f"{key}_entity_f1"] = round(result.entity_f1, 4) if result.entity_f1 is not None else None
            out[f"{key}_intent_f1"] = round(result.intent_f1, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="one benchmark measurement (prints a JSON line)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("one", help="train and evaluate one pipeline")
    one.add_argument("--pipeline", required=True, choices=sorted(PIPELINES))
    one.add_argument("--config", help="config file of the nlu_ci_default pipeline")
    b = sub.add_parser("bare", help="bare train + evaluate of a config, no job around it")
    b.add_argument("--config", required=True)
    s = sub.add_parser("sklearn", help="bare scikit-learn TF-IDF + LinearSVC intent fit")
    sc = sub.add_parser("sklearn-configured", help="the same, configured as LinearIntentClassifier's defaults")
    o = sub.add_parser("order", help="entity F1 on a seeded shuffle: as given and in the job's canonical order")
    o.add_argument("--seed", type=int, required=True)
    o.add_argument("--config", required=True)
    for p in (one, b, s, sc, o):
        p.add_argument("--train", required=True)
        p.add_argument("--test", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "one":
        row = measure(args.pipeline, args.train, args.test, config=args.config)
    elif args.cmd == "bare":
        row = bare(args.config, args.train, args.test)
    elif args.cmd == "sklearn-configured":
        row = sklearn_configured(args.train, args.test)
    elif args.cmd == "order":
        row = order(args.train, args.test, args.seed, args.config)
    else:
        row = sklearn_fit(args.train, args.test)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
