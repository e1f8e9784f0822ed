"""Concurrent runs on one store, and kill -9 of a real run at several points (the store stays consistent)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nlu_ci.engine.predict import load_model, predict
from nlu_ci.registry.store import ModelStore
from support.data import SAMPLE, cli_env, shuffled_train_labels, write_data


def check_store_invariants(models: Path, project: str = "default") -> None:
    store = ModelStore(models, project)
    active = store.active_name()
    if active is not None:
        assert active in store.models(), f"ACTIVE names {active}, not a complete model"
        assert store.verify(active) == [], store.verify(active)
        interp = load_model(store.dir / active)
        assert predict(interp, ["hello"])[0]["intent"]
    for line in (store.dir / "history.jsonl").read_text().splitlines() if (store.dir / "history.jsonl").exists() else []:
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                # only a torn final write from the kill is acceptable, and the next append starts a new line
                pass
    for name in store.models():
        assert not name.startswith("."), name


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


def _kill_when(proc: subprocess.Popen, needle: str, timeout: float = 120) -> bool:
    """Read the run's log until ``needle`` appears, then SIGKILL it. False if the run ended first."""
    deadline = time.time() + timeout
    for line in proc.stderr:
        if needle in line:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        assert time.time() < deadline
    proc.wait()
    return False


def test_kill_9_at_every_stage_leaves_a_consistent_store(tmp_path, fast_config, sample_examples):
    models = tmp_path / "models"
    env = cli_env(models, NLU_CI_CONFIG=str(fast_config), NLU_CI_DATA=str(SAMPLE))
    assert subprocess.run([sys.executable, "-m", "nlu_ci.cli", "run"], env=env, capture_output=True).returncode == 0
    first = ModelStore(models).active_name()
    # each killed run trains on new data, so it would really train and could promote
    killed = 0
    for i, needle in enumerate(["stage load: started", "stage train: started", "stage evaluate: started",
                                "stage decide:", "stage store: started", "stage promote: started",
                                "stage retention: started"]):
        more = sample_examples + [{"text": f"hello number {i} {j}", "intent": "greet", "entities": []} for j in range(6)]
        data = write_data(tmp_path / f"d{i}.json", more if i % 2 else shuffled_train_labels(sample_examples, 0.1, seed=i))
        e = dict(env, NLU_CI_DATA=str(data), NLU_CI_LOG_LEVEL="INFO")
        killed += _kill_when(start(["run"], e), needle)
        check_store_invariants(models)
        assert ModelStore(models).active_name() in ModelStore(models).models()
    assert killed >= 5
    # a clean run afterwards works, cleans the leftovers and leaves the store consistent
    r = subprocess.run([sys.executable, "-m", "nlu_ci.cli", "run", "--json"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outcome"] in {"promoted", "rejected", "skipped"}
    incoming = ModelStore(models).dir / ".incoming"
    assert list(incoming.iterdir()) == []
    check_store_invariants(models)
    assert first in ModelStore(models).models() or ModelStore(models).active_name() != first


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


