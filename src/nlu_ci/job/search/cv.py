"""K-fold cross-validated choice among several ``--config`` (``--cv-folds K``), on the training side only.

Task ``index`` = ``config * K + fold``: train config ``config`` on the other K-1 folds (``search.folds``) and
evaluate it on fold ``fold``. The K x configs tasks run in forked processes on the pod's cores
(``engine.child.parallel``, ``cpus.workers``; each task's own calibration folds then use one process), or as
the indexes of a Kubernetes Indexed Job (``search.indexed``); the results are the same either way, in
index order, so the choice is too.

The choice: the highest mean intent F1 over the folds; on a tie (equal to 9 decimal places) the higher mean
entity F1 (a config without entities counts as lowest); then the config listed first.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import statistics
import time
from pathlib import Path

from nlu_ci import cpus
from nlu_ci.engine import child
from nlu_ci.errors import ConfigError, RuntimeFailure
from nlu_ci.job.search import folds

log = logging.getLogger(__name__)
TIE_BREAK = ("highest mean intent F1 (9 decimals), then highest mean entity F1, then the config listed first")


def task_of(index: int, k: int, n_configs: int) -> tuple[int, int]:
    """(config, fold) of task ``index``; a ``ConfigError`` for an index outside 0..K*configs-1."""
    if not 0 <= index < k * n_configs:
        raise ConfigError(f"cv task index {index} is outside 0..{k * n_configs - 1} "
                             f"({n_configs} configs x {k} folds)")
    return divmod(index, k)


def data_key(data, k: int, salt: str) -> str:
    """What a task's result must agree on with the job: the training side's content, K and the salt."""
    from nlu_ci.data.dataset import fingerprint

    return fingerprint(data, "", {"cv_folds": k, "salt": salt})[:23]


def run_task(config, data, k: int, salt: str, index: int, workdir: Path, n_configs: int) -> dict:
    """One (config, fold): train on the other folds, evaluate on this one. ``config``: a pipeline ``Config``."""
    from nlu_ci.engine.model import Model
    from nlu_ci.engine.training import train

    ci, fold = task_of(index, k, n_configs)
    t0 = time.perf_counter()
    train_data, held = folds.split(data, k, salt, fold)
    out = Path(workdir) / f"cv-{ci}-{fold}"
    try:
        result = Model(train(config.path, train_data, out, config.parsed)).evaluate(held)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"index": index, "config": ci, "fold": fold, "intent_f1": result.intent_f1, "entity_f1": result.entity_f1,
            "train_examples": len(train_data.training_examples), "test_examples": len(held),
            "seconds": round(time.perf_counter() - t0, 3), "data_key": data_key(data, k, salt)}


def local_results(configs, data, k: int, salt: str, workers: int, workdir: Path) -> list[dict]:
    """Every task's result in index order: ``workers`` forked processes at a time (one: all here)."""
    folds.check_k(k, data)
    n = len(configs)

    def task(index: int):
        def fn():
            if workers > 1:
                cpus.set_workers(1)  # in a forked task: its own calibration folds in one process (no oversubscription)
            return run_task(configs[index // k], data, k, salt, index, workdir, n)
        return fn

    return child.parallel([task(i) for i in range(k * n)], workers, "cv fold")


def _spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "min": min(values),
            "max": max(values)}


def _digest(values) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()[:12]


def section(configs, results: list[dict], k: int, seconds: float, workers: int, runner: str) -> dict:
    """The report's ``cv_search``: per config the folds' scores and their mean/std/min/max, and the choice."""
    rows = []
    for ci, config in enumerate(configs):
        mine = sorted((r for r in results if r["config"] == ci), key=lambda r: r["fold"])
        if [r["fold"] for r in mine] != list(range(k)):
            raise RuntimeFailure(f"cv search: config {config.path} has results for folds {[r['fold'] for r in mine]}, "
                                 f"expected 0..{k - 1}")
        entity = [r["entity_f1"] for r in mine]
        rows.append({"config": str(config.path),
                     "intent_f1": _spread([r["intent_f1"] for r in mine]),
                     "entity_f1": _spread(entity) if all(e is not None for e in entity) else None,
                     "folds": [{"intent_f1": r["intent_f1"], "entity_f1": r["entity_f1"],
                                "test_examples": r["test_examples"], "seconds": r["seconds"]} for r in mine],
                     "train_seconds": round(sum(r["seconds"] for r in mine), 3)})
    best = choose(rows)
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    return {"folds": k, "configs": rows, "chosen": rows[best]["config"], "chosen_index": best,
            "tie_break": TIE_BREAK, "seconds": round(seconds, 3), "workers": workers, "runner": runner,
            "tasks": len(results), "scores_digest": _digest([(r["intent_f1"], r["entity_f1"]) for r in results])}


def choose(rows: list[dict]) -> int:
    def key(i: int):
        entity = rows[i]["entity_f1"]
        return (-round(rows[i]["intent_f1"]["mean"], 9), -round(entity["mean"], 9) if entity else 1.0, i)

    return min(range(len(rows)), key=key)


def search(configs, data, k: int, salt: str, workers: int, workdir: Path) -> dict:
    """Cross-validate ``configs`` on ``data`` (the training side) locally; the ``cv_search`` section."""
    t0 = time.perf_counter()
    results = local_results(configs, data, k, salt, workers, workdir)
    for row in results:
        log.info("cv config %d fold %d: intent F1 %.4f (%.1f s)", row["config"], row["fold"], row["intent_f1"],
                 row["seconds"])
    return section(configs, results, k, time.perf_counter() - t0, workers, "processes" if workers > 1 else "serial")
