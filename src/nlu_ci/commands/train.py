"""``nlu-ci train``: train a model into the store (no evaluation, no promotion)."""
from __future__ import annotations

import argparse
import time

from nlu_ci.commands.options import COMMON
from nlu_ci.commands.result import Result
from nlu_ci.errors import ConfigError
from nlu_ci.registry import backends
from nlu_ci.registry.store import iso, now_utc

NAME = "train"
HELP = "train a model into the store (no evaluation, no promotion)"
SETTINGS = COMMON + ["data", "configs", "max_repair_share"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(settings, args: argparse.Namespace) -> Result:
    from nlu_ci.data import dataset
    from nlu_ci.engine.training import read_config
    from nlu_ci.engine.training import train as train_model
    from nlu_ci.registry.metadata import model_metadata

    if settings.data is None:
        raise ConfigError("train: set --data / NLU_CI_DATA")
    registry = backends.build(settings)
    store = registry.store
    store.ensure()
    _, config_text = read_config(settings.config)
    data = dataset.load_training_data(settings.data, max_repair_share=settings.max_repair_share)
    split = dataset.Split(data, [], {"method": "none"})
    with registry.lock():
        started = now_utc()
        name = store.new_model_name(started)
        staged = store.staging_dir(name)
        try:
            t0 = time.perf_counter()
            train_model(settings.config, data, staged)
            fp = dataset.fingerprint(data, config_text, split.params)
            info = {"fingerprint": fp, "examples": len(data.training_examples), "train_examples":
                    len(data.training_examples), "test_examples": 0}
            meta = model_metadata(settings.project, (settings.config, config_text), fp, split, info, iso(started),
                                  time.perf_counter() - t0)
            final = registry.commit(staged, meta)
        finally:
            store.discard(staged)
    return Result({"model": name, "path": str(final)}, f"trained {name} → {final} (not active)")
