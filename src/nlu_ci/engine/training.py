"""Train and persist a rasa_nlu model from a pipeline config file."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.engine import child, configcheck, memory, regex_batch, slim_tokens
from nlu_ci.errors import ConfigError, RuntimeFailure, Terminated
from nlu_ci.yamlfile import read_yaml

log = logging.getLogger(__name__)


def read_config(path: Path | str) -> tuple[Any, str]:
    """Load and check a rasa_nlu config; returns (RasaNLUModelConfig, its text). ConfigError on problems."""
    from rasa_nlu import config as rasa_config
    from rasa_nlu import registry

    path = Path(path)
    raw, text = read_yaml(path, "pipeline config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a pipeline config must be a mapping with 'language' and 'pipeline'")
    raw = configcheck.expand_variables(raw, str(path))  # only ${NLU_CI_VAR_*}; never a secret
    pipeline = raw.get("pipeline")
    if isinstance(pipeline, str):
        if pipeline not in registry.registered_pipeline_templates:
            raise ConfigError(f"{path}: unknown pipeline template '{pipeline}'")
    elif isinstance(pipeline, list) and pipeline:
        classes = []
        for i, item in enumerate(pipeline):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                raise ConfigError(f"{path}: pipeline[{i}] needs a 'name'")
            configcheck.check_component_name(name, f"{path}: pipeline[{i}]")  # before any import
            try:
                registry.get_component_class(name)
            except Exception:
                raise ConfigError(f"{path}: pipeline[{i}]: unknown component '{name}'") from None
            classes.append((name, registry.get_component_class(name)))
        configcheck.check_requirements(classes, str(path))  # 'Missing property' before training, not in it
    else:
        raise ConfigError(f"{path}: 'pipeline' must be a non-empty list of components (or a template name)")
    try:  # from the checked values: rasa_nlu's own reader would expand ${VAR} again, secrets included
        cfg = rasa_config.RasaNLUModelConfig(raw)
    except Exception as err:
        raise ConfigError(f"{path}: invalid pipeline config: {err}") from None
    return cfg, text


def pipeline_names(cfg) -> list[str]:
    return [c.get("name") for c in cfg.pipeline]


def extracts_entities(cfg) -> bool:
    from rasa_nlu import registry

    for name in pipeline_names(cfg):
        cls = registry.get_component_class(name)
        if "entities" in (getattr(cls, "provides", []) or []):
            return True
    return False


def train(config_path: Path | str, training_data, out_dir: Path, cfg=None) -> Path:
    """Train on ``training_data`` (rasa_nlu TrainingData) and persist into ``out_dir`` (must not exist).
    ``cfg``: the config as ``read_config`` returned it, when the caller has read it already.

    The fit and the persisting run in a forked child process (``engine.child``): a SIGTERM during a fit of
    minutes stops the job within a second instead of when the C code returns."""
    if cfg is None:
        cfg, _ = read_config(config_path)
    data = canonical_order(training_data)
    return child.call(lambda: _train_here(config_path, cfg, data, Path(out_dir)), "training")


def _example_key(message) -> str:
    entities = [{k: e.get(k) for k in ("start", "end", "entity", "value")} for e in message.get("entities") or []]
    doc = json.dumps([message.text, message.get("intent"), entities], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


def canonical_order(training_data):
    """The same examples in an order that depends on their content alone (SHA-256 of text, intent and
    entities): crfsuite's passive-aggressive training and liblinear's coordinate descent depend on the order
    examples arrive in (entity F1 0.715-0.730 across five orders of HWU64), so the same data must always
    give the same model, whatever order a file, a folder walk or a platform export lists it in. A hash, not
    the text itself: sorted text would cluster similar examples, which online training handles worse."""
    from rasa_nlu.training_data import TrainingData

    examples = sorted(training_data.training_examples, key=_example_key)
    return TrainingData(examples, entity_synonyms=dict(training_data.entity_synonyms),
                        regex_features=list(training_data.regex_features),
                        lookup_tables=list(training_data.lookup_tables))


def working_copy(training_data):
    """What rasa_nlu's ``Trainer.train`` trains on instead of its ``copy.deepcopy`` of the data (~150 MB at
    100k examples on top of the original): new messages with their own ``data`` dicts (components add
    tokens, features and patterns there) and copies of the lists and dicts a component may extend
    (``RegexFeaturizer`` appends the lookup tables to ``regex_features``). The original stays as it was for
    ``Trainer.persist``'s training_data.json; the texts, entities and intents are shared, not copied."""
    from rasa_nlu.training_data import Message, TrainingData

    examples = [Message(m.text, dict(m.data), set(m.output_properties), m.time) for m in training_data.training_examples]
    return TrainingData(examples, entity_synonyms=copy.deepcopy(training_data.entity_synonyms),
                        regex_features=copy.deepcopy(training_data.regex_features),
                        lookup_tables=copy.deepcopy(training_data.lookup_tables))


# in the context every component's ``train`` gets from ``train_pipeline``: it calls ``finish_training``
FINISHES_LATER = "nlu_ci_finishes_training_later"

# stock rasa_nlu components with a faster or leaner train here (the same state and the same messages afterwards)
STOCK_TRAIN = {"RegexFeaturizer": regex_batch.train, "WhitespaceTokenizer": slim_tokens.train}


def _train_step(component):
    cls = type(component)
    if cls.__module__.startswith("rasa_nlu.") and cls.__name__ in STOCK_TRAIN:
        fast = STOCK_TRAIN[cls.__name__]
        return lambda data, config, **context: fast(component, data, config, **context)
    return component.train


def train_pipeline(trainer, data) -> None:
    """rasa_nlu 0.15's ``Trainer.train`` (model.py), training on ``working_copy(data)``; stock components in
    ``STOCK_TRAIN`` by their faster version; each component with the global generators ``seeded``.

    A component's ``train`` may leave its fits running in forked children (``child.start``) while the
    components after it train (on 2 CPUs the CRF's fit beside the intent fit), when the context says
    ``FINISHES_LATER`` (rasa_nlu's own ``Trainer.train`` does not: there each component has trained when its
    ``train`` returns). It then has ``finish_training()``, called for each such component in pipeline order
    once all have trained, which waits for them, and ``stop_training()``, called instead when training fails
    or is stopped, which kills them."""
    from rasa_nlu import components

    trainer.training_data = data
    data.validate()
    context: dict[str, Any] = {FINISHES_LATER: True}
    for component in trainer.pipeline:
        context.update(component.provide_context() or {})
    if not trainer.skip_validation:
        components.validate_arguments(trainer.pipeline, context)
    working = working_copy(data)
    finished = False
    try:
        for i, component in enumerate(trainer.pipeline):
            drop_unread(working, trainer.pipeline[i:])
            component.prepare_partial_processing(trainer.pipeline[:i], context)
            with seeded(TRAINING_SEED):
                context.update(_train_step(component)(working, trainer.config, **context) or {})
        for component in trainer.pipeline:
            if hasattr(component, "finish_training"):
                component.finish_training()
        finished = True
    finally:
        if not finished:
            for component in trainer.pipeline:
                if hasattr(component, "stop_training"):
                    component.stop_training()


# what a stock component's train reads of each example beyond its text and annotations (rasa_nlu 0.15
# entity_synonyms.py: the entities and the data's synonyms); nlu-ci's components say it themselves
# (``reads_in_training``). A component in neither may read anything an earlier one made.
STOCK_READS: dict[str, tuple[str, ...]] = {"EntitySynonymMapper": ()}
ANNOTATIONS = frozenset({"intent", "entities"})


def _reads(component) -> tuple[str, ...] | None:
    cls = type(component)
    if cls.__module__.startswith("rasa_nlu."):
        return STOCK_READS.get(cls.__name__)
    return getattr(cls, "reads_in_training", None)


def drop_unread(working, rest: list) -> None:
    """Remove from the working copy's examples what earlier components made (tokens, their pattern marks,
    text features) once no component still to train reads it: at 100k examples the tokens and regex
    features are ~175 MB under the intent fit. Only when each of ``rest`` says what it reads."""
    reads = [_reads(component) for component in rest]
    if any(r is None for r in reads):
        return
    keep = ANNOTATIONS.union(*reads)
    dropped = False
    for message in working.training_examples:
        for key in [k for k in message.data if k not in keep]:
            del message.data[key]
            dropped = True
    if dropped:
        memory.trim()


# the global generators every component trains with (rasa_nlu's SklearnIntentClassifier fits
# SVC(probability=True) without a random_state: libsvm's Platt scaling draws its seed from numpy's)
TRAINING_SEED = 0


@contextlib.contextmanager
def seeded(seed: int):
    """numpy's and Python's global generators seeded for one component's fit and restored afterwards: a
    forked training child inherits them from whatever ran before it (a fresh process: OS entropy), so
    without this the same data gives different confidences, and sometimes different intents, run to run."""
    import random

    import numpy as np

    saved_np, saved_py = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved_np)
        random.setstate(saved_py)


def _train_here(config_path: Path | str, cfg, training_data, out_dir: Path) -> Path:
    from rasa_nlu.model import Trainer

    try:
        trainer = Trainer(cfg)
    except Exception as err:
        raise ConfigError(f"{config_path}: cannot build the pipeline: {err}") from None
    try:
        # scikit-learn's grid search prints progress on stdout: keep stdout for machine output (--json)
        with contextlib.redirect_stdout(sys.stderr):
            train_pipeline(trainer, training_data)
    except (Terminated, KeyboardInterrupt):
        raise
    except MemoryError:
        raise RuntimeFailure("training ran out of memory") from None
    except Exception as err:
        raise RuntimeFailure(f"training failed in rasa_nlu: {type(err).__name__}: {err}") from err
    try:
        persisted = trainer.persist(str(out_dir.parent), project_name="", fixed_model_name=out_dir.name)
    except OSError as err:
        raise RuntimeFailure(f"{out_dir}: cannot write the model: {err.strerror or err}") from None
    return Path(persisted)
