"""The nightly job, stage by stage: lock → load → split → (skip?) → train → evaluate → decide → promote → report.

This module knows the order and the outcomes; each stage lives in its own module. ``run(settings)``
never raises: it returns the report (a dict, keys in docs/architecture.md) whose ``exit_code`` the CLI
uses. Nothing here can make a half-written model active (see ``registry.store``).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nlu_ci import __version__, dataset, gate
from nlu_ci import report as reports
from nlu_ci.errors import EXIT_OK, EXIT_RUNTIME, DataError, LockedError, NluCiError, StoreError, Terminated
from nlu_ci.evaluation import EvaluationResult, evaluate
from nlu_ci.policy import load_policy
from nlu_ci.redact import redact
from nlu_ci.registry.store import ModelStore, iso, now_utc
from nlu_ci.settings import Settings

log = logging.getLogger(__name__)

VALIDATION_SALT_SUFFIX = ":validation"


class Stages:
    """Times each stage, logs it, and records the durations into the report."""

    def __init__(self, durations: dict[str, float]):
        self.durations = durations

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("stage %s: started", name)
        try:
            yield
        finally:
            seconds = time.perf_counter() - t0
            self.durations[name] = round(self.durations.get(name, 0.0) + seconds, 3)
            log.info("stage %s: %.2fs", name, seconds)


class TerminationRequested(BaseException):
    """Raised by the SIGTERM handler. A BaseException on purpose: libraries that catch ``Exception``
    (scikit-learn's grid search records failed fits and goes on) cannot swallow it."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Kubernetes stops a pod with SIGTERM: stop at once, clean up, report ``failed`` (exit 1)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise TerminationRequested(f"received {signal.Signals(signum).name}: run stopped")

    before = {s: signal.signal(s, handler) for s in (signal.SIGTERM,)}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


# ---------------------------------------------------------------- stage helpers (one job each)

def fetch_data(settings: Settings, workdir: Path) -> Path:
    """Where today's training data is: a local file/folder (or, with a platform, a downloaded file)."""
    if settings.platform_host:
        from nlu_ci.registry import platform

        return platform.PlatformClient.from_settings(settings).download_data(workdir)
    if settings.data is None:
        raise DataError("no training data: set --data / NLU_CI_DATA (file or folder) or RASA_PLATFORM_HOST")
    return settings.data


def fetch_source(settings: Settings, data_path: Path) -> str:
    """Where the data came from, for the report (the platform's URL, not the temporary download)."""
    if settings.platform_host:
        from nlu_ci.registry import platform_flow

        return platform_flow.client(settings).data_url()
    return redact(str(data_path))


def read_configs(settings: Settings) -> list[tuple[Path, str]]:
    from nlu_ci.engine.training import read_config

    return [(Path(p), read_config(p)[1]) for p in settings.configs]


def split_data(settings: Settings, data, where: Path) -> dataset.Split:
    if settings.test_data:
        return dataset.file_split(data, settings.test_data)
    return dataset.hash_split(data, settings.test_fraction, settings.split_salt, where)


def evaluate_model(model_dir: Path, test: list[dict]) -> EvaluationResult:
    from nlu_ci.engine.predict import load_model, predict

    interpreter = load_model(model_dir)
    predictions = predict(interpreter, [e["text"] for e in test])
    return evaluate(test, predictions)


def predictor(model_dir: Path | None):
    """A callable ``texts -> predictions`` for must-pass checks (loads the model once, lazily)."""
    if model_dir is None:
        return None
    from nlu_ci.engine.predict import load_model, predict

    cache: dict[str, Any] = {}

    def run(texts: list[str]) -> list[dict]:
        if "interpreter" not in cache:
            cache["interpreter"] = load_model(model_dir)
        return predict(cache["interpreter"], texts)

    return run


def select_config(configs: list[tuple[Path, str]], train_data, settings: Settings, scratch: Path,
                  report: dict) -> tuple[Path, str]:
    """With several configs: train each on a validation split carved from the TRAINING data (never the test set)
    and pick the best intent F1 (ties: the first listed). One config: nothing to do."""
    if len(configs) == 1:
        return configs[0]
    from nlu_ci.engine.training import train

    inner = dataset.hash_split(train_data, settings.test_fraction, settings.split_salt + VALIDATION_SALT_SUFFIX,
                               "training data (validation split)")
    rows, best = [], None
    for i, (path, _text) in enumerate(configs):
        t0 = time.perf_counter()
        model = train(path, inner.train, scratch / f"select-{i}")
        result = evaluate_model(model, inner.test)
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


def active_model(settings: Settings, store: ModelStore) -> str | None:
    """Name of the model that serves today (with a platform: the one carrying the tag there)."""
    if settings.platform_host:
        from nlu_ci.registry import platform_flow

        return platform_flow.client(settings).active_model()
    return store.active_name()


def promote(settings: Settings, store: ModelStore, name: str) -> str | None:
    """Make ``name`` the serving model; returns the previous one (with a platform: tag it there too)."""
    if settings.platform_host:
        from nlu_ci.registry import platform_flow

        return platform_flow.promote(settings, store, name)
    return store.activate(name)


def publish(settings: Settings, store: ModelStore | None, report: dict) -> None:
    """Every output channel after a run: metrics (Pushgateway + textfile). Never changes the outcome unless strict."""
    from nlu_ci import metrics

    store_dir = store.dir if store is not None else Path(settings.models_dir) / settings.project
    result = metrics.publish(report, store_dir=store_dir, pushgateway_url=settings.pushgateway_url,
                             username=settings.pushgateway_username, password=settings.pushgateway_password,
                             timeout=settings.metrics_timeout, strict=False)
    report["metrics"] = {"pushed": result.pushed, "textfile": str(result.textfile) if result.textfile else None,
                         "error": result.push_error or result.textfile_error}
    if settings.strict_metrics and not result.ok:
        raise NluCiError(result.push_error or result.textfile_error or "metrics not published")


def notify_slack(settings: Settings, report: dict) -> None:
    """Slack message on promoted, rejected and failed runs (nlu_ci.notify). Never raises, never changes the outcome."""
    if not settings.slack_webhook_url:
        return
    from nlu_ci import notify

    result = notify.notify(report, settings.slack_webhook_url, timeout=settings.http_timeout)
    report["notification"] = {"sent": result.sent, "error": result.error}


def model_metadata(settings: Settings, config: tuple[Path, str], fingerprint: str, split: dataset.Split,
                   data_info: dict, started_at: str, train_seconds: float) -> dict:
    path, text = config
    import rasa_nlu

    return {
        "project": settings.project,
        "created_at": iso(now_utc()),
        "run_started_at": started_at,
        "fingerprint": fingerprint,
        "config": {"path": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text},
        "data": data_info,
        "split": split.params,
        "train_seconds": round(train_seconds, 3),
        "versions": {"nlu_ci": __version__, "rasa_nlu": getattr(rasa_nlu, "__version__", "?")},
    }


# ---------------------------------------------------------------- the job

def run(settings: Settings) -> dict[str, Any]:
    """Run the job once. Returns the report (never raises; ``report['exit_code']`` tells the CLI)."""
    started = now_utc()
    stamp = started.strftime("%Y%m%dT%H%M%S-%f")
    report = reports.new_report(settings.project, iso(started))
    stage = Stages(report["durations"])
    store: ModelStore | None = None
    staged: Path | None = None
    locked = False
    kube_session = None  # nlu_ci.kube: in a cluster, the Lease (beside the file lock) and Events
    t0 = time.perf_counter()
    try:
        with sigterm_raises(), tempfile.TemporaryDirectory(prefix="nlu-ci-") as tmp:
            store = ModelStore(settings.models_dir, settings.project)
            with stage("lock"):
                store.ensure()
                store.acquire_lock()
                locked = True
                store.clean_incoming()
                from nlu_ci import kube

                kube_session = kube.connect(settings)  # None outside a cluster (or --kubernetes off)
                if kube_session is not None:
                    kube_session.acquire_lease()  # LockedError when another Job runs (a manual one, say)
            staged = _run_locked(settings, store, report, stage, Path(tmp), started, stamp)
            if report.get("outcome") == "promoted" and settings.restart_deployment:
                with stage("restart"):
                    kube.restart_after_promotion(kube_session, settings.restart_deployment, report)
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
        if store is not None and locked:
            if staged is not None:
                store.discard(staged)
            store.clean_incoming(quiet=True)  # whatever a failed stage left half-written
        report["durations"]["total"] = round(time.perf_counter() - t0, 3)
        report["finished_at"] = iso(now_utc())
        _finish(settings, store if locked else None, report, stamp)
        if kube_session is not None:
            kube.finish(kube_session, report)  # the Event on the Job, then the Lease released
        if store is not None and locked:
            store.release_lock()
    return report


def _run_locked(settings: Settings, store: ModelStore, report: dict, stage: Stages, tmp: Path,
                started, stamp: str) -> Path | None:
    """The stages that run under the lock; fills ``report``; returns the staging dir to clean up, if any."""
    with stage("load"):
        configs = read_configs(settings)
        load_policy(settings.policy)  # a bad policy.yml/must_pass.yml fails here (exit 2), not after training
        data_path = fetch_data(settings, tmp)
        data = dataset.load_training_data(data_path)
    with stage("split"):
        split = split_data(settings, data, data_path)
        for warning in split.warnings:
            log.warning("%s", warning)
            report["warnings"].append(warning)
        fingerprint = dataset.fingerprint(data, "\n---\n".join(t for _, t in configs), split.params)
        intents = sorted({m.get("intent") for m in data.training_examples if m.get("intent")})
        source = fetch_source(settings, data_path)
        data_info = {"fingerprint": fingerprint, "source": source,
                     "examples": len(data.training_examples), "train_examples": len(split.train.training_examples),
                     "test_examples": len(split.test), "intents": intents, "split": split.params}
        report["data"] = data_info

    active_name = active_model(settings, store)
    active_meta = _active_metadata(store, active_name, report)
    if active_meta and active_meta.get("fingerprint") == fingerprint:
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

    from nlu_ci.engine.training import train

    name = store.new_model_name(started)
    staged = store.staging_dir(name)
    with stage("train"):
        config = select_config(configs, split.train, settings, tmp, report)
        t_train = time.perf_counter()
        train(config[0], split.train, staged)
        train_seconds = time.perf_counter() - t_train
    evaluation = "local"
    if settings.platform_host:
        from nlu_ci.registry import platform_flow

        with stage("upload"):
            evaluation = platform_flow.upload_for_run(settings, store, staged, name, active_name, report, tmp)
    with stage("evaluate"):
        if evaluation == "platform":
            candidate, active_result, active_dir = platform_flow.evaluate_both(settings, store, name, active_name)
        else:
            candidate = evaluate_model(staged, split.test)
            active_result, active_dir = _evaluate_active(store, active_name, active_meta, split.test, report)
    report["candidate"] = reports.model_section(name, store.dir / name, candidate, config=str(config[0]))
    if active_result is not None:
        report["active"] = reports.model_section(active_name, active_dir, active_result)
    tested = split.test if evaluation == "local" else platform_flow.tested_examples(candidate)  # the platform's own
    _write_predictions(store, report, tested, candidate, active_result, stamp)

    with stage("decide"):
        from nlu_ci.engine.training import extracts_entities, read_config

        decision = _decide(settings, candidate, active_result, staged, active_dir,
                           extracts_entities(read_config(config[0])[0]))
        report["decision"] = decision.to_dict()
        log.info("decision: %s — %s", "promote" if decision.promote else "keep the active model", decision.reason)
        if hasattr(gate, "format_checks"):
            log.info("checks:\n%s", gate.format_checks(decision))

    meta = model_metadata(settings, config, fingerprint, split, data_info, report["started_at"], train_seconds)
    meta["metrics"] = {k: v for k, v in report["candidate"].items() if k not in ("model", "path", "config")}
    meta["decision"] = {"promote": decision.promote, "reason": decision.reason}
    if settings.dry_run:
        report.update(outcome="dry_run", exit_code=EXIT_OK)
        log.info("dry run: the candidate is not stored and not promoted")
        return staged
    with stage("store"):
        store.commit(staged, meta)
    if decision.promote:
        with stage("promote"):
            previous = promote(settings, store, name)
        store.append_history({"event": "promotion", "at": iso(now_utc()), "model": name, "previous": previous,
                              "reason": decision.reason})
        report.update(outcome="promoted", exit_code=EXIT_OK)
        log.info("promoted %s (was %s)", name, previous or "none")
    else:
        report.update(outcome="rejected", exit_code=EXIT_OK)
    with stage("retention"):
        report["pruned"] = store.prune(settings.keep_models)
    return None


def _active_metadata(store: ModelStore, name: str | None, report: dict) -> dict | None:
    if not name:
        return None
    try:
        return store.metadata(name)
    except StoreError as err:
        warning = f"active model {name}: {err}"
        log.warning("%s", warning)
        report["warnings"].append(warning)
        return None


def _evaluate_active(store: ModelStore, name: str | None, meta: dict | None, test: list[dict],
                     report: dict) -> tuple[EvaluationResult | None, Path | None]:
    """Evaluate the active model on the same test set. A damaged active model is reported, never fatal:
    the gate then treats the run like a bootstrap (absolute checks only) so a good candidate can replace it."""
    if not name:
        return None, None
    problems = store.verify(name) if meta is not None else [f"{store.dir / name}: metadata unreadable"]
    if not problems:
        try:
            return evaluate_model(store.dir / name, test), store.dir / name
        except NluCiError as err:
            problems = [str(err)]
    warning = f"active model {name} is unusable ({'; '.join(problems[:3])}); comparing against no active model"
    log.warning("%s", warning)
    report["warnings"].append(warning)
    report["active_unusable"] = {"model": name, "problems": problems[:20]}
    return None, None


def _decide(settings: Settings, candidate, active, candidate_dir: Path, active_dir: Path | None,
            has_entities: bool) -> gate.Decision:
    policy = load_policy(settings.policy)
    return gate.decide(candidate, active, policy, predict_candidate=predictor(candidate_dir),
                       predict_active=predictor(active_dir), has_entities=has_entities)


def _write_predictions(store: ModelStore, report: dict, test: list[dict], candidate, active, stamp: str) -> None:
    """Per-utterance predictions of both models, one JSON line each, beside the report."""
    import json

    path = store.dir / "reports" / f"{stamp}.predictions.jsonl"
    try:
        with open(path, "w", encoding="utf-8") as fh:
            for i, example in enumerate(test):
                row = {"text": example["text"], "intent": example["intent"],
                       "candidate": _utterance(candidate, i), "active": _utterance(active, i)}
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        report["predictions_file"] = str(path)
    except OSError as err:
        log.warning("cannot write predictions %s: %s", path, err.strerror or err)


def _utterance(result, i: int) -> dict | None:
    if result is None or i >= len(result.utterances):
        return None
    u = result.utterances[i]
    return {"intent": u.get("predicted_intent"), "confidence": u.get("confidence"),
            "entities": u.get("predicted_entities"), "correct": u.get("correct")}


def _finish(settings: Settings, store: ModelStore | None, report: dict, stamp: str) -> None:
    """Publish, write the report and the history line. Best effort: a failure here never hides the outcome."""
    try:
        publish(settings, store, report)
    except NluCiError as err:  # --strict-metrics: the run fails (exit 1) ...
        report.update(error=redact(str(err)), exit_code=EXIT_RUNTIME)
        if report.get("outcome") != "promoted":  # ... but a promotion that happened is never reported as not done
            report["outcome"] = "failed"
        log.error("%s", redact(err))
    except Exception as err:  # noqa: BLE001 - publishing must never crash the job
        log.warning("publishing failed: %s", redact(err))
    notify_slack(settings, report)  # after a --strict-metrics failure, so the message has the final outcome
    if store is not None:
        try:
            report["report_path"] = str(store.write_report(report, stamp))
            store.append_history(_history_line(report))
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
