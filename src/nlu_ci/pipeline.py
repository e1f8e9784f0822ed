"""The nightly job, stage by stage: lock → load → split → (skip?) → train → evaluate → decide → promote → report.

This module knows the order and the outcomes; each stage lives in its own module, where models live is
the registry's business (``registry/``), what a finished run tells the world is the output channels'
(``outputs/``). ``run(settings)`` never raises: it returns the report (a dict, keys in
docs/architecture.md) whose ``exit_code`` the CLI uses. Nothing here can make a half-written model
active (see ``registry.store``).
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from nlu_ci import dataset, gate, kube
from nlu_ci import report as reports
from nlu_ci.check.base_split import base_split, score_apart
from nlu_ci.data import stage as data_stage
from nlu_ci.engine.model import Model
from nlu_ci.engine.training import read_config, train
from nlu_ci.errors import EXIT_OK, EXIT_RUNTIME, LockedError, NluCiError, StoreError, Terminated
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.messages import live
from nlu_ci.model_metadata import model_metadata
from nlu_ci.outputs import RunRecord, channels
from nlu_ci.policy import Policy, load_policy
from nlu_ci.redact import redact
from nlu_ci.registry import backends
from nlu_ci.registry.base import Registry
from nlu_ci.registry.store import iso, now_utc
from nlu_ci.runlock import RunLock
from nlu_ci.settings import Settings
from nlu_ci.stages import Stages, TerminationRequested, signals_deferred, sigterm_raises

log = logging.getLogger(__name__)

VALIDATION_SALT_SUFFIX = ":validation"


# ---------------------------------------------------------------- stage helpers (one job each)

def read_configs(settings: Settings) -> list[tuple[Path, str, Any]]:
    """(path, text, parsed config) of each ``--config``: read and checked once, before anything is trained."""
    return [(Path(p), *read_config(p)[::-1]) for p in settings.configs]


def split_data(settings: Settings, data, where: Path) -> dataset.Split:
    if settings.base_data:
        return base_split(settings, data, where)  # nlu-ci check: the base branch's held-out set (check/base_split.py)
    if settings.test_data:
        return dataset.file_split(data, settings.test_data, settings.max_repair_share)
    return dataset.hash_split(data, settings.test_fraction, settings.split_salt, where)


def select_config(configs: list[tuple[Path, str, Any]], train_data, settings: Settings, scratch: Path,
                  report: dict) -> tuple[Path, str, Any]:
    """With several configs: train each on a validation split carved from the TRAINING data (never the test set)
    and pick the best intent F1 (ties: the first listed). One config: nothing to do."""
    if len(configs) == 1:
        return configs[0]
    inner = dataset.hash_split(train_data, settings.test_fraction, settings.split_salt + VALIDATION_SALT_SUFFIX,
                               "training data (validation split)")
    rows, best = [], None
    for i, (path, _text, cfg) in enumerate(configs):
        t0 = time.perf_counter()
        result = Model(train(path, inner.train, scratch / f"select-{i}", cfg)).evaluate(inner.test)
        row = {"config": str(path), "validation_intent_f1": result.intent_f1,
               "validation_entity_f1": result.entity_f1, "train_seconds": round(time.perf_counter() - t0, 3)}
        rows.append(row)
        log.info("candidate config %s: validation intent F1 %.4f", path, result.intent_f1)
        if best is None or result.intent_f1 > rows[best]["validation_intent_f1"]:
            best = i
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    report["candidates"] = rows
    report["data"]["validation_examples"] = len(inner.test)
    return configs[best]


# ---------------------------------------------------------------- the job

def run(settings: Settings) -> dict[str, Any]:
    """Run the job once. Returns the report (never raises; ``report['exit_code']`` tells the CLI)."""
    started = now_utc()
    stamp = started.strftime("%Y%m%dT%H%M%S-%f")
    report = reports.new_report(settings.project, iso(started))
    stage = Stages(report["durations"])
    registry: Registry | None = None
    lock: RunLock | None = None  # the file lock and, in a cluster, the Lease (whose session also sends Events)
    staged: Path | None = None
    t0 = time.perf_counter()
    try:
        with sigterm_raises(), tempfile.TemporaryDirectory(prefix="nlu-ci-") as tmp:
            registry = backends.build(settings)
            with stage("lock"):
                registry.store.ensure()
                lock = RunLock(registry.store, lambda: kube.connect(settings))  # no session outside a cluster
                lock.acquire()  # LockedError when another run holds the store or the Lease
                registry.store.clean_incoming()
            staged = _run_locked(settings, registry, lock, report, stage, Path(tmp), started, stamp)
            if report.get("outcome") == "promoted" and settings.restart_deployment:
                with stage("restart"):
                    kube.restart_after_promotion(lock.kube, settings.restart_deployment, report)
    except TerminationRequested as sig:
        err = Terminated(str(sig))
        report.update(outcome="failed", error=str(err), exit_code=err.exit_code)
        log.error("%s", err)
    except LockedError as err:
        report.update(outcome="locked", error=str(err), exit_code=EXIT_OK)
        log.warning("%s", err)
    except NluCiError as err:
        report.update(outcome="failed", error=redact(str(err)), exit_code=err.exit_code)
        log.error("%s", redact(err))
    except Exception as err:  # a bug or an unexpected library error: still report, never lose the store
        message = redact(f"internal error: {type(err).__name__}: {' '.join(str(err).split())}")
        report.update(outcome="failed", error=message, exit_code=EXIT_RUNTIME)
        log.exception("%s", message)
    finally:
        with signals_deferred(report["warnings"]):  # a stop signal now must not lose the run's record
            held = lock is not None and lock.held
            if held:
                registry.store.discard(staged)
                registry.store.clean_incoming(quiet=True)  # whatever a failed stage left half-written
            report["durations"]["total"] = round(time.perf_counter() - t0, 3)
            report["finished_at"] = iso(now_utc())
            _finish(settings, registry, held, report, stamp, lock.kube if lock is not None else None)
            if lock is not None:
                lock.release()
    return report


def _run_locked(settings: Settings, registry: Registry, lock: RunLock, report: dict, stage: Stages, tmp: Path,
                started, stamp: str) -> Path | None:
    """The stages that run under the lock; fills ``report``; returns the staging dir to clean up, if any."""
    store = registry.store
    with stage("load"):
        configs = read_configs(settings)
        policy = load_policy(settings.policy)  # a bad policy.yml/must_pass.yml fails here (exit 2), not after training
        data_path, source = registry.fetch_data(tmp)
        data = dataset.load_training_data(data_path, max_repair_share=settings.max_repair_share)
    with stage("split"):
        split = split_data(settings, data, data_path)
        for warning in split.warnings:
            log.warning("%s", warning)
            report["warnings"].append(warning)
        fingerprint = dataset.fingerprint(data, "\n---\n".join(t for _, t, _ in configs), split.params)
        intents = sorted({m.get("intent") for m in data.training_examples if m.get("intent")})
        data_info = {"fingerprint": fingerprint, "source": source,
                     "examples": len(data.training_examples), "train_examples": len(split.train.training_examples),
                     "test_examples": len(split.test), "intents": intents, "split": split.params}
        report["data"] = data_info
    with stage("validate"):  # repairs, notes, data check findings (README "nlu-ci validate")
        data_stage.run_stage(settings, data, split, report)

    active_name = registry.active()
    active_meta = _active_metadata(registry, active_name, report)
    if active_meta and active_meta.get("fingerprint") == fingerprint and _intact(registry, active_name, report):
        report["active"] = dict(reports.model_section(active_name, store.dir / active_name),
                                **{k: v for k, v in (active_meta.get("metrics") or {}).items()})
        report.update(outcome="skipped", exit_code=EXIT_OK)
        log.info("skipped: the active model %s was trained from the same data and config (%s)",
                 active_name, fingerprint[:19])
        return None
    if active_meta and dataset.split_params_differ(active_meta.get("split"), split.params):
        warning = (f"split parameters differ from the active model's ({active_meta.get('split')} vs {split.params}): "
                   "the active model may have trained on some of today's test examples")
        log.warning("%s", warning)
        report["warnings"].append(warning)

    name = store.new_model_name(started)
    staged = store.staging_dir(name)
    with stage("train"):
        config = select_config(configs, split.train, settings, tmp, report)
        t_train = time.perf_counter()
        train(config[0], split.train, staged, config[2])
        train_seconds = time.perf_counter() - t_train
    if registry.uploads_candidates:
        with stage("upload"):
            registry.upload(staged, name, active_name, report, tmp)
    candidate_model = Model(staged, name)
    with stage("evaluate"):
        scored = registry.evaluate(candidate_model, name, active_name, split.test, report)
        score_apart(split, candidate_model, scored.active_model, report)  # check: the branch's new examples
    report["candidate"] = reports.model_section(name, store.dir / name, scored.candidate, config=str(config[0]))
    if scored.active is not None:
        report["active"] = reports.model_section(active_name, store.dir / active_name, scored.active)
    _write_predictions(registry, report, scored.tested, scored.candidate, scored.active, stamp)
    live_section = live.stage(settings, candidate_model, scored.active_model, report)  # report["live"], docs/inbox.md

    with stage("decide"):
        decision = _decide(policy, scored, candidate_model)
        live.apply(decision, live_section, policy.max_live_disagreement)  # a gate check only with --messages
        report["decision"] = decision.to_dict()
        log.info("decision: %s — %s", "promote" if decision.promote else "keep the active model", decision.reason)
        log.info("checks:\n%s", gate.format_checks(decision))

    meta = model_metadata(settings.project, config[:2], fingerprint, split, data_info, report["started_at"], train_seconds)
    meta["metrics"] = {k: v for k, v in report["candidate"].items() if k not in ("model", "path", "config")}
    meta["decision"] = {"promote": decision.promote, "reason": decision.reason}
    if settings.dry_run:
        report.update(outcome="dry_run", exit_code=EXIT_OK)
        log.info("dry run: the candidate is not stored and not promoted")
        return staged
    with stage("store"):
        registry.commit(staged, meta)
    if decision.promote:
        with stage("promote"):
            lock.check()  # a run whose Lease was taken over promotes nothing (LeaseLost: failed, exit 1)
            previous = registry.activate(name)
        store.append_history({"event": "promotion", "at": iso(now_utc()), "model": name, "previous": previous,
                              "reason": decision.reason})
        report.update(outcome="promoted", exit_code=EXIT_OK)
        log.info("promoted %s (was %s)", name, previous or "none")
    else:
        report.update(outcome="rejected", exit_code=EXIT_OK)
    with stage("retention"):
        report["pruned"] = store.prune(settings.keep_models)
    return None


def _active_metadata(registry: Registry, name: str | None, report: dict) -> dict | None:
    if not name:
        return None
    try:
        return registry.metadata(name)
    except StoreError as err:
        warning = f"active model {name}: {err}"
        log.warning("%s", warning)
        report["warnings"].append(warning)
        return None


def _intact(registry: Registry, name: str, report: dict) -> bool:
    """A damaged active model is never a reason to skip: train a replacement even when nothing changed."""
    problems = registry.verify(name)
    if problems:
        warning = (f"active model {name} is damaged ({problems[0]}): training a replacement although data and "
                   "config are unchanged")
        log.warning("%s", warning)
        report["warnings"].append(warning)
    return not problems


def _decide(policy: Policy, scored, candidate: Model) -> gate.Decision:
    active = scored.active_model
    return gate.decide(scored.candidate, scored.active, policy, predict_candidate=candidate.predict,
                       predict_active=active.predict if active is not None else None,
                       has_entities=candidate.extracts_entities)


def _write_predictions(registry: Registry, report: dict, test: list[dict], candidate: EvaluationResult,
                       active: EvaluationResult | None, stamp: str) -> None:
    """Per-utterance predictions of both models, one JSON line each, beside the report."""
    rows = [{"text": example["text"], "intent": example["intent"], "entities": example.get("entities") or [],
             "candidate": _utterance(candidate, i), "active": _utterance(active, i)} for i, example in enumerate(test)]
    try:
        report["predictions_file"] = str(registry.store.write_predictions(stamp, rows))
    except StoreError as err:
        log.warning("%s", err)


def _utterance(result, i: int) -> dict | None:
    if result is None or i >= len(result.utterances):
        return None
    u = result.utterances[i]
    return {"intent": u.get("predicted_intent"), "confidence": u.get("confidence"),
            "entities": u.get("predicted_entities"), "correct": u.get("correct")}


def _finish(settings: Settings, registry: Registry | None, held: bool, report: dict, stamp: str,
            kube_session) -> None:
    """Publish to every output channel, then write the report and the history line. Best effort: a failure
    here never hides the outcome."""
    store_dir = registry.store.dir if registry is not None else Path(settings.models_dir) / settings.project
    history = None  # None: the metrics channel reads it from store_dir itself
    if registry is not None:
        try:
            history = registry.store.history()
        except (OSError, NluCiError):
            history = None
    record = RunRecord(store_dir=store_dir, reports_dir=store_dir / "reports", stamp=stamp, history=history)
    try:
        outputs = channels.build(settings, kube_session=kube_session)
    except Exception as err:  # noqa: BLE001
        log.warning("cannot build the output channels: %s", redact(err))
        outputs = []
    channels.publish_all(outputs, report, record)
    if registry is not None and held:
        try:
            report["report_path"] = str(registry.store.write_report(report, stamp))
            registry.store.append_history(_history_line(report))
        except NluCiError as err:
            log.error("cannot record the run in the store: %s", err)
            report.setdefault("warnings", []).append(str(err))
    if settings.report:
        try:
            reports.write(report, Path(settings.report))
        except NluCiError as err:
            log.error("cannot write --report: %s", err)


def _history_line(report: dict) -> dict:
    cand, active = report.get("candidate") or {}, report.get("active") or {}
    return {"event": "run", "outcome": report.get("outcome"), "started_at": report.get("started_at"),
            "finished_at": report.get("finished_at"), "error": report.get("error"),
            "fingerprint": (report.get("data") or {}).get("fingerprint"),
            "candidate": cand.get("model"), "candidate_intent_f1": cand.get("intent_f1"),
            "active": active.get("model"), "active_intent_f1": active.get("intent_f1"),
            "reason": (report.get("decision") or {}).get("reason")}
