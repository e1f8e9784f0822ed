"""The CLI's commands: each takes Settings (+ parsed args), prints, and returns an exit code."""
from __future__ import annotations

import argparse
import logging

from nlu_ci import report as reports
from nlu_ci.errors import EXIT_OK, ConfigError, StoreError
from nlu_ci.registry.store import ModelStore, iso, now_utc
from nlu_ci.settings import Settings

log = logging.getLogger(__name__)


def _emit(settings: Settings, data, text: str) -> None:
    from nlu_ci.cli import emit

    emit(settings.output, data, text)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from nlu_ci import pipeline

    result = pipeline.run(settings)
    _emit(settings, result, reports.summary(result))
    return int(result["exit_code"])


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def status(settings: Settings, args: argparse.Namespace) -> int:
    store = ModelStore(settings.models_dir, settings.project)
    active = store.active_name()
    meta = None
    problems: list[str] = []
    if active:
        try:
            meta = store.metadata(active)
        except StoreError as err:
            problems = [str(err)]
        problems = problems or store.verify(active)
    history = store.history(args.last)
    data = {
        "project": settings.project,
        "store": str(store.dir),
        "active": {"model": active, "intact": not problems, "problems": problems,
                   "created_at": (meta or {}).get("created_at"), "fingerprint": (meta or {}).get("fingerprint"),
                   "metrics": {k: v for k, v in ((meta or {}).get("metrics") or {}).items() if k != "per_intent"}}
        if active else None,
        "previous": store.previous_name(),
        "models": store.models(),
        "history": history,
    }
    lines = [f"project {settings.project} (store {store.dir})"]
    if active:
        m = data["active"]["metrics"]
        lines.append(f"active:   {active} ({'intact' if not problems else 'DAMAGED: ' + problems[0]})")
        lines.append(f"          intent F1 {_fmt(m.get('intent_f1'))}, accuracy {_fmt(m.get('intent_accuracy'))}, "
                     f"entity F1 {_fmt(m.get('entity_f1'))}, trained {data['active']['created_at']}")
    else:
        lines.append("active:   none (the next run bootstraps)")
    lines.append(f"previous: {data['previous'] or '-'};  models kept: {len(data['models'])}")
    lines.append("last runs:")
    for h in history:
        when = h.get("started_at") or h.get("at")
        what = h.get("outcome") or h.get("event")
        detail = h.get("error") or h.get("reason") or h.get("model") or ""
        lines.append(f"  {when}  {what:<9} {detail}")
    if settings.platform_host:
        from nlu_ci.registry import platform_flow

        data["platform"], platform_lines = platform_flow.status(settings)
        lines += platform_lines
    _emit(settings, data, "\n".join(lines))
    return EXIT_OK


def rollback(settings: Settings, args: argparse.Namespace) -> int:
    store = ModelStore(settings.models_dir, settings.project)
    store.ensure()
    if settings.platform_host:  # rollback = tag the previous model on the platform (and the local pointer)
        from nlu_ci.registry import platform_flow

        with store.locked():
            target, previous = platform_flow.rollback(settings, store, args.model)
        changed = target != previous
        _emit(settings, {"active": target, "previous": previous, "changed": changed},
              f"rolled back: {target} is tagged {settings.platform_tag!r} (was {previous or 'none'})" if changed
              else f"{target} is already tagged {settings.platform_tag!r}")
        return EXIT_OK
    with store.locked():
        current = store.active_name()
        target = args.model or store.previous_name()
        if not target:
            raise ConfigError(f"rollback: no previous model recorded in {store.dir}; name one: nlu-ci rollback MODEL")
        if target not in store.models():
            raise ConfigError(f"rollback: no complete model named {target!r} in {store.dir}")
        problems = store.verify(target)
        if problems:
            raise StoreError(f"rollback: model {target} is damaged: {problems[0]}")
        if target == current:
            _emit(settings, {"active": current, "changed": False}, f"{target} is already active")
            return EXIT_OK
        previous = store.activate(target)
        store.append_history({"event": "rollback", "at": iso(now_utc()), "model": target, "previous": previous,
                              "outcome": "rollback"})
    _emit(settings, {"active": target, "previous": previous, "changed": True},
          f"rolled back: {target} is active (was {previous or 'none'})")
    return EXIT_OK


def evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from nlu_ci.compare import load_test_examples, resolve_model
    from nlu_ci.evaluation import format_table
    from nlu_ci.pipeline import evaluate_model

    path = resolve_model(settings, args.model, "evaluate")
    test = load_test_examples(args.eval_data)
    result = evaluate_model(path, test)
    out = dict(result.summary(), model=str(path), test_examples=len(test))
    _emit(settings, out, format_table(result, f"{path} on {args.eval_data} ({len(test)} examples)"))
    return EXIT_OK


def compare(settings: Settings, args: argparse.Namespace) -> int:
    from nlu_ci import compare as compare_mod

    return compare_mod.command(settings, args)


def train(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from nlu_ci import dataset
    from nlu_ci.engine.training import read_config
    from nlu_ci.engine.training import train as train_model
    from nlu_ci.pipeline import model_metadata

    if settings.data is None:
        raise ConfigError("train: set --data / NLU_CI_DATA")
    store = ModelStore(settings.models_dir, settings.project)
    store.ensure()
    _, config_text = read_config(settings.config)
    data = dataset.load_training_data(settings.data)
    split = dataset.Split(data, [], {"method": "none"})
    with store.locked():
        started = now_utc()
        name = store.new_model_name(started)
        staged = store.staging_dir(name)
        try:
            t0 = time.perf_counter()
            train_model(settings.config, data, staged)
            fp = dataset.fingerprint(data, config_text, split.params)
            info = {"fingerprint": fp, "examples": len(data.training_examples), "train_examples":
                    len(data.training_examples), "test_examples": 0}
            meta = model_metadata(settings, (settings.config, config_text), fp, split, info, iso(started),
                                  time.perf_counter() - t0)
            final = store.commit(staged, meta)
        finally:
            store.discard(staged)
    _emit(settings, {"model": name, "path": str(final)}, f"trained {name} → {final} (not active)")
    return EXIT_OK
