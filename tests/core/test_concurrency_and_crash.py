"""Concurrent runs on one store, and kill -9 of a real run at several points (the store stays consistent)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from nlu_ci.registry.store import ModelStore
from support.data import SAMPLE, cli_env, shuffled_train_labels, write_data
from support.store_checks import GUARANTEED_STAGES, check_history, check_store_invariants


def start(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nlu_ci.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_concurrent_runs_exactly_one_trains(tmp_path, fast_config):
    env = cli_env(tmp_path / "models", NLU_CI_CONFIG=str(fast_config), NLU_CI_DATA=str(SAMPLE))
    procs = [start(["run", "--json"], env) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    reports = [json.loads(out) for out, _ in results]
    outcomes = sorted(r["outcome"] for r in reports)
    assert all(p.returncode == 0 for p in procs), results
    # one promoted; the others were either locked out or came after it finished and skipped
    assert outcomes.count("promoted") == 1, outcomes
    assert set(outcomes) <= {"promoted", "locked", "skipped"}
    assert "locked" in outcomes, outcomes
    locked = next(r for r in reports if r["outcome"] == "locked")
    assert "locked by another run (pid" in locked["error"]
    check_store_invariants(tmp_path / "models")


def _kill_when(proc: subprocess.Popen, needle: str, delay: float = 0.0, timeout: float = 120) -> str | None:
    """Read the run's log until ``needle`` appears, wait ``delay`` s, then SIGKILL it. Returns the stage the
    run was in when the kill landed (the last "stage X: started" it logged), or None if it ended first."""
    deadline = time.time() + timeout
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            seen.append(proc.stderr.read())
            started = [x.split("stage ")[1].split(":")[0] for x in "".join(seen).splitlines()
                       if "stage " in x and ": started" in x]
            return started[-1] if proc.returncode == -signal.SIGKILL and started else None
        assert time.time() < deadline
    proc.wait()
    return None


def test_kill_9_at_every_stage_leaves_a_consistent_store(tmp_path, fast_config, sample_examples):
    models = tmp_path / "models"
    policy = tmp_path / "policy.yml"  # permissive: every finished run promotes, so kills can land in promote
    policy.write_text("non_inferiority_margin: 1.0\nsignificance: off\nper_intent_max_drop: off\nentity_f1: off\n")
    env = cli_env(models, NLU_CI_CONFIG=str(fast_config), NLU_CI_DATA=str(SAMPLE), NLU_CI_KEEP_MODELS="2",
                  NLU_CI_POLICY=str(policy))
    first = subprocess.run([sys.executable, "-m", "nlu_ci.cli", "run", "--json"], env=env, capture_output=True,
                           text=True)
    assert first.returncode == 0, first.stderr
    durations = json.loads(first.stdout)["durations"]  # kill moments are spread over each short stage
    rng = random.Random(20261129)
    landed: list[str] = []
    torn: set[int] = set()
    stages = ["load", "train", "evaluate", "decide", *GUARANTEED_STAGES]
    for i, stage in enumerate(stages):
        for attempt in range(8 if stage in GUARANTEED_STAGES else 1):  # short stages: aim until a kill lands
            n = 10 * i + attempt
            # each killed run trains on new data, so it really trains and could promote
            more = sample_examples + [{"text": f"hello number {n} {j}", "intent": "greet", "entities": []}
                                      for j in range(6)]
            data = write_data(tmp_path / f"d{n}.json", more if n % 2 else shuffled_train_labels(sample_examples, 0.1,
                                                                                               seed=n))
            before = ModelStore(models).active_name()
            delay = rng.uniform(0, durations.get(stage, 0.0)) if stage in GUARANTEED_STAGES else 0.0
            where = _kill_when(start(["run"], dict(env, NLU_CI_DATA=str(data), NLU_CI_LOG_LEVEL="INFO")),
                               f"stage {stage}: started", delay)
            active = check_store_invariants(models, torn=frozenset(torn))
            cut = check_history(ModelStore(models).dir / "history.jsonl", frozenset(torn))
            if cut is not None:
                torn.add(cut)
            if where in ("load", "train", "evaluate", "decide", "store"):
                assert active == before, f"killed in {where}: ACTIVE moved from {before} to {active}"
            if where is not None:
                landed.append(where)
            if where == stage:
                break
    # a kill landed in every stage the store's guarantee is about (and in the long ones)
    assert set(stages) <= set(landed), landed
    # a clean run afterwards works, cleans the leftovers and leaves the store consistent
    r = subprocess.run([sys.executable, "-m", "nlu_ci.cli", "run", "--json"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outcome"] in {"promoted", "rejected", "skipped"}
    incoming = ModelStore(models).dir / ".incoming"
    assert list(incoming.iterdir()) == []
    check_store_invariants(models, torn=frozenset(torn))


def test_sigterm_during_training_exits_promptly_and_records_failed(tmp_path, fast_config):
    models = tmp_path / "models"
    env = cli_env(models, NLU_CI_CONFIG=str(fast_config), NLU_CI_DATA=str(SAMPLE), NLU_CI_OUTPUT="json")
    proc = start(["run"], env)
    for line in proc.stderr:
        if "stage train: started" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out, _ = proc.communicate(timeout=60)
    rep = json.loads(out)
    assert proc.returncode == 1 and rep["outcome"] == "failed" and "SIGTERM" in rep["error"]
    store = ModelStore(models)
    assert store.active_name() is None and store.models() == []
    assert list((store.dir / ".incoming").iterdir()) == []
    assert json.loads((store.dir / "history.jsonl").read_text().splitlines()[-1])["outcome"] == "failed"


