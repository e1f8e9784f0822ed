"""The one train-a-model helper: real rasa_nlu training (a pipeline or a config), persisted and loadable."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from support.data import FAST_CONFIG, load_sample


@dataclass
class Trained:
    model_dir: Path
    trained: Any  # the in-memory rasa_nlu Interpreter right after training

    @cached_property
    def loaded(self):
        """The Interpreter loaded back from the persisted model."""
        from rasa_nlu.model import Interpreter

        return Interpreter.load(str(self.model_dir))


def _config(config: str | Path | list[dict]):
    import yaml
    from rasa_nlu import config as rasa_config

    if isinstance(config, Path):
        config = config.read_text()
    doc = yaml.safe_load(config) if isinstance(config, str) else {"language": "en", "pipeline": config}
    return rasa_config.RasaNLUModelConfig({**doc, "pipeline": [dict(c) for c in doc["pipeline"]]})


def _data(data, workdir: Path):
    from rasa_nlu.training_data import TrainingData, load_data

    if isinstance(data, TrainingData):
        return data
    if isinstance(data, str | Path):
        return load_data(str(data))
    doc = load_sample()
    if data is not None:  # examples: the sample's regexes and synonyms, these examples
        doc["rasa_nlu_data"]["common_examples"] = list(data)
    path = workdir / "train-data.json"
    path.write_text(json.dumps(doc))
    return load_data(str(path))


def train(out_dir: Path, data=None, config: str | Path | list[dict] = FAST_CONFIG) -> Trained:
    """Train on ``data`` (rasa_nlu TrainingData, a data file, a list of examples, or None: the sample data)
    with ``config`` (YAML text, a config file, or a list of components) and persist into ``out_dir/model``."""
    from rasa_nlu.model import Trainer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(_config(config))
    trained = trainer.train(_data(data, out_dir))
    model_dir = trainer.persist(str(out_dir), project_name="", fixed_model_name="model")
    return Trained(Path(model_dir), trained)
