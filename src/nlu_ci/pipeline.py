"""The nightly job: load → skip if unchanged → labels → train → evaluate → decide → record, under the run's lock.

This module knows the order and the outcomes; each stage lives in its own module and returns what it found,
which ``run`` puts into the typed run report (``report.model.RunReport``; JSON keys in docs/architecture.md).
Where models live is the registry's business (``registry/``), what a finished run tells the world the
output channels' (``outputs/``). ``run(settings)`` never raises: it returns the report, whose ``exit_code``
the CLI uses. Nothing here can make a half-written model active (see ``registry.store``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu_ci import gate, kube
from nlu_ci.check import held_out
from nlu_ci.check.base_split import base_split, score_apart
from nlu_ci.data import dataset
from nlu_ci.data import out_of_scope as oos_file
from nlu_ci.data import stage as data_stage
from nlu_ci.engine.model import Model
from nlu_ci.engine.training import read_config, train
from nlu_ci.errors import EXIT_OK, StoreError
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.gate import fallback
from nlu_ci.gate.policy import Policy, load_policy
from nlu_ci.job import Job
from nlu_ci.job.search import run as cv_search
from nlu_ci.messages import live
from nlu_ci.registry import holds, records
from nlu_ci.registry.base import Evaluated
from nlu_ci.registry.metadata import model_metadata
from nlu_ci.registry.store import iso, now_utc
from nlu_ci.report.model import DataInfo, DecisionRecord, ModelScores, RunReport
from nlu_ci.settings import Settings

log = logging.getLogger(__name__)

VALIDATION_SALT_SUFFIX = ":validation"


def run(settings: Settings, *, pull_request: bool = False) -> RunReport:
    """Run the job once. Returns the report (never raises; ``report.exit_code`` tells the CLI).
    ``pull_request``: ``nlu-ci check``, where only the channels that say so publish (``outputs/channels.py``)."""
    with Job(settings, pull_request=pull_request) as job:  # stop signals, a scratch dir; errors become outcomes; records the run at the end
        job.lock_store()
        inputs = load(job)
        if skip_if_unchanged(job, inputs):
            return job.report
        inputs.guarded = judge_labels(job, inputs)
        candidate = train_candidate(job, inputs)
        scored = evaluate(job, inputs, candidate)
        decision = decide(job, inputs, candidate, scored)
        record(job, inputs, candidate, decision)
    return job.report


# ---------------------------------------------------------------- what the stages return

@dataclass(frozen=True)
class Config:
    """One ``--config``: where it is, its text (the fingerprint's) and the parsed pipeline."""

    path: Path
    text: str
    parsed: Any


@dataclass
class Inputs:
    """What ``load`` found: the configs, the policy, the data and its split."""

    configs: list[Config]
    policy: Policy
    data: Any  # rasa_nlu TrainingData
    split: dataset.Split
    fingerprint: str
    active: str | None
    active_meta: dict | None
    out_of_scope: list[str] | None = None  # --out-of-scope: messages that must fall back
    guarded: held_out.Guarded | None = None  # relabels against the active model's data (``judge_labels``)

    @property
    def test(self) -> list[dict]:
        """The gate's held-out examples: labelled as the active model was judged when a text was relabelled."""
        return self.guarded.test if self.guarded is not None else self.split.test


@dataclass
class Candidate:
    """The model trained this run, in its staging dir until ``record`` commits it."""

    name: str
    staged: Path
    config: Config
    train_seconds: float
    model: Model


# ---------------------------------------------------------------- the stages, in order

def read_configs(settings: Settings) -> list[Config]:
    """Each ``--config``: read and checked once, before anything is trained."""
    return [Config(Path(p), *read_config(p)[::-1]) for p in settings.configs]  # read_config: (parsed, text)


def load(job: Job) -> Inputs:
    settings, report = job.settings, job.report
    with job.stage("load"):
        configs = read_configs(settings)
        policy = load_policy(settings.policy)  # a bad policy.yml/must_pass.yml fails here (exit 2), not after training
        data_path, source = job.registry.fetch_data(job.tmp)
        data = dataset.load_training_data(data_path, max_repair_share=settings.max_repair_share)
        out_of_scope = oos_file.read(settings.out_of_scope) if settings.out_of_scope else None  # exit 2 before training
    with job.stage("split"):
        split = split_data(settings, data, data_path)
        for warning in split.warnings:
            report.warn(warning, log)
        fingerprint = dataset.fingerprint(data, "\n---\n".join(c.text for c in configs), split.params)
        report.data = DataInfo(fingerprint, source, len(data.training_examples), len(split.train.training_examples),
                               len(split.test), sorted({m.get("intent") for m in data.training_examples
                                                        if m.get("intent")}), split.params,
                               revision=job.registry.data_revision)
        policy.check_must_pass_intents(report.data.intents)  # exit 2 naming must-pass intents the data lacks
    with job.stage("validate"):  # repairs, notes, data check findings (README "nlu-ci validate")
        report.data.quality = data_stage.run_stage(settings, data, split, report.warnings)
        data_stage.enforce(settings, report.data.quality)
    active = job.registry.active()
    return Inputs(configs, policy, data, split, fingerprint, active, _active_metadata(job, active), out_of_scope)


def split_data(settings: Settings, data, where: Path) -> dataset.Split:
    if settings.base_data:
        return base_split(settings, data, where)  # nlu-ci check: the base branch's held-out set (check/base_split.py)
    if settings.test_data:
        return dataset.file_split(data, settings.test_data, settings.max_repair_share)
    return dataset.hash_split(data, settings.test_fraction, settings.split_salt, where)


def skip_if_unchanged(job: Job, inputs: Inputs) -> bool:
    """Skipped when the active model was trained from the same data, config and split, and is intact."""
    meta, name = inputs.active_meta, inputs.active
    if meta and meta.get("fingerprint") == inputs.fingerprint and _intact(job, name):
        job.report.active = ModelScores.from_dict({**ModelScores.from_result(name, job.store.dir / name).to_dict(),
                                                   **(meta.get("metrics") or {})})
        job.report.end("skipped", EXIT_OK)
        log.info("skipped: the active model %s was trained from the same data and config (%s)",
                 name, inputs.fingerprint[:19])
        return True
    if meta and dataset.split_params_differ(meta.get("split"), inputs.split.params):
        job.report.warn(f"split parameters differ from the active model's ({meta.get('split')} vs "
                        f"{inputs.split.params}): the active model may have trained on some of today's test "
                        "examples", log)
    return False


def judge_labels(job: Job, inputs: Inputs) -> held_out.Guarded | None:
    """Today's data against the active model's (``check/held_out.py``): relabelled held-out examples keep the active
    model's label in the gate unless ``--accept-relabels`` names them; ``data_diff`` in the report. Not in
    ``check --base-data``, whose held-out set is the base's already."""
    if job.settings.base_data or not inputs.active:
        return None
    with job.stage("labels"):
        try:  # read only from a model folder that matches its checksums
            path = job.store.path(inputs.active)
            usable = path.is_dir() and not job.store.verify(inputs.active)
        except StoreError:  # a damaged ACTIVE (e.g. naming ../): the evaluation says so; it never stops the run
            return None
        ref = held_out.reference(inputs.active, path if usable else None)
        if ref is None:
            return None
        guarded = held_out.guard(ref, [dataset.example_dict(m) for m in inputs.data.training_examples],
                                 inputs.split.test, job.settings.accept_relabels)
    job.report["data_diff"] = guarded.section
    line = held_out.warning(guarded.section)
    if line:
        job.report.warn(line, log)
    return guarded


def train_candidate(job: Job, inputs: Inputs) -> Candidate:
    name = job.store.new_model_name(job.started)
    staged = job.store.staging_dir(name)
    with job.stage("train"):
        config = select_config(job, inputs)
        t0 = time.perf_counter()
        train(config.path, inputs.split.train, staged, config.parsed)
        seconds = time.perf_counter() - t0
        held_out.write(staged, inputs.split.test)  # the data's held-out labels, judged by the next runs
    if job.registry.uploads_candidates:
        with job.stage("upload"):
            job.registry.upload(staged, name, inputs.active, job.report, job.tmp)
    return Candidate(name, staged, config, seconds, Model(staged, name))


def select_config(job: Job, inputs: Inputs) -> Config:
    """With several configs: train each on a validation split carved from the TRAINING data (never the test set)
    and pick the best intent F1 (ties: the first listed). One config: nothing to do."""
    configs, settings = inputs.configs, job.settings
    if len(configs) == 1:
        if settings.cv_folds:
            job.report.warn(f"--cv-folds {settings.cv_folds} with one --config: nothing to choose, no "
                            "cross-validation run", log)
        return configs[0]
    if settings.cv_folds:  # K-fold cross-validation on the training side (search/; README "Choosing among configs")
        with job.stage("cv_search"):
            found = cv_search.run(job, configs, inputs.split.train)
        job.report.sections["cv_search"] = found
        return configs[found["chosen_index"]]
    inner = dataset.hash_split(inputs.split.train, settings.test_fraction, settings.split_salt + VALIDATION_SALT_SUFFIX,
                               "training data (validation split)")
    rows, best = [], None
    for i, config in enumerate(configs):
        t0 = time.perf_counter()
        result = Model(train(config.path, inner.train, job.tmp / f"select-{i}", config.parsed)).evaluate(inner.test)
        rows.append({"config": str(config.path), "validation_intent_f1": result.intent_f1,
                     "validation_entity_f1": result.entity_f1, "train_seconds": round(time.perf_counter() - t0, 3)})
        log.info("candidate config %s: validation intent F1 %.4f", config.path, result.intent_f1)
        if best is None or result.intent_f1 > rows[best]["validation_intent_f1"]:
            best = i
    for i, row in enumerate(rows):
        row["chosen"] = i == best
    job.report.sections["candidates"] = rows
    job.report.data.validation_examples = len(inner.test)
    return configs[best]


def evaluate(job: Job, inputs: Inputs, candidate: Candidate) -> Evaluated:
    """Both models on the same held-out examples; their scores and per-utterance predictions into the report."""
    report, store, active = job.report, job.store, inputs.active
    with job.stage("evaluate"):
        scored = job.registry.evaluate(candidate.model, candidate.name, active, inputs.test, report)
        score_apart(inputs.split, candidate.model, scored.active_model, report)  # check: the branch's new examples
        if inputs.guarded is not None and inputs.guarded.apart:  # relabelled held-out examples, their new labels
            inputs.guarded.section["held_out"] = held_out_scores(inputs.guarded.apart, candidate.model,
                                                                 scored.active_model)
    report.candidate = ModelScores.from_result(candidate.name, store.dir / candidate.name, scored.candidate,
                                               config=str(candidate.config.path))
    if scored.active is not None:
        report.active = ModelScores.from_result(active, store.dir / active, scored.active)
    _write_predictions(job, scored.tested, scored.candidate, scored.active)
    return scored


def decide(job: Job, inputs: Inputs, candidate: Candidate, scored: Evaluated) -> gate.Decision:
    # report["live"] (docs/inbox.md): both models on recent production messages, with --messages only
    live_section = live.stage(job.settings, candidate.model, scored.active_model, job.report,
                              [m.text for m in inputs.data.training_examples])
    with job.stage("decide"):
        active = scored.active_model
        decision = gate.decide(scored.candidate, scored.active, inputs.policy, predict_candidate=candidate.model.predict,
                               predict_active=active.predict if active is not None else None,
                               has_entities=candidate.model.extracts_entities)
        decision = holds.apply(job.store, inputs.fingerprint, decision)  # data rolled back from: not again
        live.apply(decision, live_section, inputs.policy.max_live_disagreement)  # a gate check only with --messages
        fallback_section = fallback.section(inputs.policy, scored.candidate, scored.active, inputs.out_of_scope,
                                            job.settings.out_of_scope, candidate.model.predict,
                                            active.predict if active is not None else None)
        fallback.apply(decision, fallback_section, inputs.policy.fallback.max_coverage_drop)  # report "fallback"
        if fallback_section is not None:
            job.report["fallback"] = fallback_section
        job.report.decision = DecisionRecord.from_dict(decision.to_dict())
        log.info("decision: %s — %s", decision.verdict, decision.reason)
        log.info("checks:\n%s", gate.format_checks(decision))
    return decision


def record(job: Job, inputs: Inputs, candidate: Candidate, decision: gate.Decision) -> None:
    """Store the candidate and promote it when the gate says so (a dry run does neither), then retention."""
    settings, report, store = job.settings, job.report, job.store
    if settings.dry_run:
        report.end("dry_run", EXIT_OK)
        log.info("dry run: the candidate is not stored and not promoted")
        job.staged = candidate.staged  # discarded when the run is recorded
        return
    with job.stage("store"):
        job.registry.commit(candidate.staged, _metadata(job, inputs, candidate, decision))
    if decision.promote:
        with job.stage("promote"):
            job.lock.check()  # a run whose Lease was taken over promotes nothing (LeaseLost: failed, exit 1)
            previous = job.registry.activate(candidate.name)
        # ACTIVE has moved: the outcome is promoted whatever happens to this line (a warning if it cannot be written)
        records.append_or_warn(store, {"event": "promotion", "at": iso(now_utc()), "model": candidate.name,
                                       "previous": previous, "reason": decision.reason}, report)
        report.end("promoted", EXIT_OK)
        log.info("promoted %s (was %s)", candidate.name, previous or "none")
    else:
        report.end("rejected", EXIT_OK)
    with job.stage("retention"):
        report.sections["pruned"] = store.prune(settings.keep_models)
    if report.outcome == "promoted" and settings.restart_deployment:
        with job.stage("restart"):
            kube.restart_after_promotion(job.lock.kube, settings.restart_deployment, report)


# ---------------------------------------------------------------- helpers of the stages

def held_out_scores(examples: list[dict], candidate: Model, active: Model | None) -> dict:
    """Both models on the relabelled held-out examples with their NEW labels: information, not the gate's."""
    out = {"examples": len(examples), "labels": "new"}
    for role, model in (("candidate", candidate), ("active", active)):
        if model is not None:
            result = model.evaluate(examples)
            out[role] = {"intent_accuracy": result.intent_accuracy, "intent_f1": result.intent_f1}
    return out


def _metadata(job: Job, inputs: Inputs, candidate: Candidate, decision: gate.Decision) -> dict:
    config = candidate.config
    meta = model_metadata(job.settings.project, (config.path, config.text), inputs.fingerprint, inputs.split,
                          job.report.data.to_dict(), job.report.started_at, candidate.train_seconds)
    meta["metrics"] = job.report.candidate.metrics()
    meta["decision"] = {"promote": decision.promote, "reason": decision.reason}
    return meta


def _active_metadata(job: Job, name: str | None) -> dict | None:
    if not name:
        return None
    try:
        return job.registry.metadata(name)
    except StoreError as err:
        job.report.warn(f"active model {name}: {err}", log)
        return None


def _intact(job: Job, name: str) -> bool:
    """A damaged active model is never a reason to skip: train a replacement even when nothing changed."""
    problems = job.registry.verify(name)
    if problems:
        job.report.warn(f"active model {name} is damaged ({problems[0]}): training a replacement although data "
                        "and config are unchanged", log)
    return not problems


def _write_predictions(job: Job, test: list[dict], candidate: EvaluationResult,
                       active: EvaluationResult | None) -> None:
    """Per-utterance predictions of both models, one JSON line each, beside the report."""
    rows = [{"text": example["text"], "intent": example["intent"], "entities": example.get("entities") or [],
             "candidate": _utterance(candidate, i), "active": _utterance(active, i)} for i, example in enumerate(test)]
    try:
        job.report.sections["predictions_file"] = str(job.store.write_predictions(job.stamp, rows))
    except StoreError as err:
        log.warning("%s", err)


def _utterance(result, i: int) -> dict | None:
    if result is None or i >= len(result.utterances):
        return None
    u = result.utterances[i]
    return {"intent": u.get("predicted_intent"), "confidence": u.get("confidence"),
            "entities": u.get("predicted_entities"), "correct": u.get("correct")}
