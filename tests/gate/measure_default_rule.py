"""Measure the default gate on HWU64 data growth (docs/policy.md, "Why this default"): real ``nlu-ci run`` processes.

For each seed: ``run`` on the 1,400-example base (bootstrap), then, each from a copy of that store, a run on
each step (growth with a new intent, growth without, one added example, the noisy branch) under the built-in
policy. Prints one Markdown row per (seed, step): the numbers, the default's outcome and what the seed's strict
rule would decide on the same models (it only replaces the comparison check: it rejects when the gain is not
> 0 or another check failed). ``--policies strict`` also runs the strict policy
for real (one more run per step; tests/gate/test_default_rule_hwu64.py does that for the one-example step).

    PYTHONPATH=src:tests python tests/gate/measure_default_rule.py [--seeds 0 1 2] [--policies default strict]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from support import growth
from support.data import CONFIG, cli_env, run_cli

STRICT = "min_improvement: 0.0\n"  # the seed's rule: intent F1 must strictly go up (every other key built-in)
POLICIES = {"default": None, "strict": STRICT}
STEPS = ("growth", "more", "plus1", "noisy")


def run(models: Path, data: Path, policy: Path | None) -> dict:
    args = ["run", "--data", str(data), "--config", str(CONFIG), "--json"]
    if policy is not None:
        args += ["--policy", str(policy)]
    r = run_cli(args, cli_env(models))
    if r.code != 0:
        raise SystemExit(f"nlu-ci run failed ({r.code}): {r.output[-2000:]}")
    return r.json


def row(seed: int, step: str, policy: str, rep: dict) -> str:
    cand, active = rep["candidate"], rep["active"]
    sig = next(c for c in rep["decision"]["checks"] if c["name"] == "significance")["values"]
    failed = [c["name"] for c in rep["decision"]["checks"] if c["enabled"] and not c["passed"]]
    worst = (next(c for c in rep["decision"]["checks"] if c["name"] == "per_intent")["values"].get("worst") or {})
    ent = ("-" if cand.get("entity_f1") is None or active.get("entity_f1") is None
           else f"{cand['entity_f1'] - active['entity_f1']:+.4f}")
    others = [name for name in failed if name != "non_inferiority"]
    strict = "rejected" if others or cand["intent_f1"] - active["intent_f1"] <= 0 else "promoted"
    strict = strict if policy == "default" else "(run)"
    return (f"| {seed} | {step} | {policy} | {rep['data']['test_examples']} | {cand['intent_f1']:.4f} | "
            f"{active['intent_f1']:.4f} | {cand['intent_f1'] - active['intent_f1']:+.4f} | "
            f"{sig.get('b')}/{sig.get('c')} | {sig.get('p_worse', float('nan')):.3g} | "
            f"{worst.get('drop', float('nan')):+.3f} | {ent} | {rep['outcome']} | {strict} | "
            f"{', '.join(failed) or '-'} |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", choices=sorted(POLICIES), default=["default"])
    args = parser.parse_args(argv)
    if not growth.available():
        raise SystemExit(f"HWU64 not found at {growth.HWU64}")
    print("| seed | step | policy | test ex. | candidate F1 | active F1 | gain | McNemar b/c | p(worse) "
          "| worst intent drop | entity F1 gain | outcome | strict rule | failed checks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "strict.yml").write_text(STRICT)
        for seed in args.seeds:
            steps = growth.steps(seed)
            files = {name: growth.write(root / f"{seed}-{name}.json", ex) for name, ex in steps.items()}
            base = root / f"base-{seed}"
            assert run(base, files["base"], None)["outcome"] == "promoted"
            for step in STEPS:
                for policy, text in POLICIES.items():
                    if policy not in args.policies:
                        continue
                    models = root / f"{seed}-{step}-{policy}"
                    shutil.copytree(base, models, symlinks=True)
                    rep = run(models, files[step], root / "strict.yml" if text else None)
                    print(row(seed, step, policy, rep), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
