"""Sample data, data variants, the held-out split, running the real CLI (shared by every suite)."""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "nlu.json"
CONFIG = ROOT / "nlu_config.yml"

# a fast intents + entities pipeline for tests (the shipped nlu_config.yml may use heavier components)
FAST_CONFIG = """language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: CRFEntityExtractor
  - name: EntitySynonymMapper
  - name: CountVectorsFeaturizer
  - name: SklearnIntentClassifier
"""


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def load_sample() -> dict:
    return json.loads(SAMPLE.read_text())


def held_out(examples: list[dict], fraction: float = 0.2, salt: str = "nlu-ci") -> list[dict]:
    """The examples the job's hash split puts in TEST (a fake platform's own held-out data is this set)."""
    from nlu_ci.data.dataset import hash_unit

    return [e for e in examples if hash_unit(e["text"], salt) < fraction]


def write_data(path: Path, examples: list[dict], base: dict | None = None) -> Path:
    base = base or load_sample()
    data = {"rasa_nlu_data": dict(base["rasa_nlu_data"], common_examples=examples)}
    path.write_text(json.dumps(data, indent=1))
    return path


def shuffled_train_labels(examples: list[dict], share: float, seed: int = 0, fraction: float = 0.2,
                          salt: str = "nlu-ci") -> list[dict]:
    """Shuffle the intent labels of ``share`` of the examples that the hash split puts in TRAIN
    (the test side stays clean, so the comparison measures a worse model, not a worse test set)."""
    from nlu_ci.data.dataset import hash_unit

    rng = random.Random(seed)
    out = [dict(e) for e in examples]
    train_idx = [i for i, e in enumerate(out) if hash_unit(e["text"], salt) >= fraction]
    chosen = rng.sample(train_idx, int(len(train_idx) * share))
    labels = [out[i]["intent"] for i in chosen]
    rng.shuffle(labels)
    intents = sorted({e["intent"] for e in examples})
    for i, label in zip(chosen, labels, strict=True):
        # make sure the label really changes
        out[i]["intent"] = label if label != out[i]["intent"] else intents[(intents.index(label) + 1) % len(intents)]
        out[i]["entities"] = []
    return out


def cli_env(models_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLU_CI_", "RASA_", "PUSHGATEWAY_", "SLACK_"))}
    env.update(NLU_CI_MODELS_DIR=str(models_dir), NLU_CI_LOG_LEVEL="INFO", NLU_CI_KUBERNETES="off")
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 300, cwd: Path | None = None,
            prefix: tuple[str, ...] = ()) -> CliResult:
    """``nlu-ci ARGS`` in a subprocess (``prefix``: a wrapper command, e.g. setpriv to run as another user)."""
    proc = subprocess.run([*prefix, sys.executable, "-m", "nlu_ci.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=str(cwd or ROOT))
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
