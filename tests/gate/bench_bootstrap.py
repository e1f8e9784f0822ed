"""Benchmark: paired bootstrap of the weighted-F1 difference (run: python tests/gate/bench_bootstrap.py).

Goal (issue 4): 2000 resamples on 10k utterances well under a few seconds on 2 cores. Prints the time
and the peak RSS growth; uses HWU64's test labels when /work/shared/datasets/hwu64 exists (CC BY 4.0,
Liu et al. 2019), synthetic 64-intent labels otherwise.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np
import psutil

from nlu_ci.gate import stats


def labels(n: int) -> list[str]:
    path = pathlib.Path("/work/shared/datasets/hwu64/test.json")
    if path.exists():
        ex = json.loads(path.read_text())["rasa_nlu_data"]["common_examples"]
        gold = [e["intent"] for e in ex]
        return [gold[i % len(gold)] for i in range(n)]
    rng = np.random.default_rng(0)
    return [f"intent_{i}" for i in rng.integers(0, 64, n)]


def main(n: int = 10_000, resamples: int = 2000) -> None:
    y = labels(n)
    rng = np.random.default_rng(1)
    vocab = sorted(set(y))
    wrong = [vocab[i] for i in rng.integers(0, len(vocab), n)]
    pc = [t if r < 0.88 else w for t, r, w in zip(y, rng.random(n), wrong, strict=True)]
    pa = [t if r < 0.86 else w for t, r, w in zip(y, rng.random(n), wrong, strict=True)]
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        res = stats.paired_bootstrap_f1_diff(y, pc, pa, resamples=resamples, seed=0)
        best = min(best, time.perf_counter() - t0)
    t0 = time.perf_counter()
    mc = stats.mcnemar_paired([a == b for a, b in zip(y, pa, strict=True)],
                              [a == b for a, b in zip(y, pc, strict=True)])
    t_mc = time.perf_counter() - t0
    rss = (proc.memory_info().rss - rss0) / 2**20
    print(f"bootstrap n={n} resamples={resamples}: best of 3 {best:.3f} s; "
          f"diff {res.observed:+.4f} CI [{res.low:+.4f}, {res.high:+.4f}]; RSS growth {rss:.0f} MiB")
    print(f"mcnemar n={n}: {t_mc * 1000:.1f} ms (b={mc.b}, c={mc.c}, p={mc.p_value:.3g})")
    bench_decide(y, pc, pa)


def bench_decide(y: list[str], pc: list[str], pa: list[str]) -> None:
    """The whole gate (default policy: every check, bootstrap included) on EvaluationResults of n utterances."""
    from nlu_ci import gate
    from nlu_ci.evaluation import evaluate

    examples = [{"text": f"u{i}", "intent": t, "entities": []} for i, t in enumerate(y)]
    cand, act = ([{"text": f"u{i}", "intent": p, "entities": []} for i, p in enumerate(pred)] for pred in (pc, pa))
    candidate, active = evaluate(examples, list(cand)), evaluate(examples, list(act))
    t0 = time.perf_counter()
    decision = gate.decide(candidate, active)
    print(f"gate.decide n={len(y)} (default policy): {time.perf_counter() - t0:.3f} s; promote={decision.promote}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
