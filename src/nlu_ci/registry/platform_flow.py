"""How the job uses the Rasa Platform (chosen when ``RASA_PLATFORM_HOST`` is set).

The model is still trained into the local store (the PVC); the platform is where the serving model
lives: its zip is uploaded, the active model is the one carrying the tag, promotion moves the tag
(and the local ACTIVE pointer too), rollback moves the tag back. ``pipeline`` and ``commands`` call
these functions from small ``if settings.platform_host`` branches; this module knows nothing of the
order of the job.

Evaluation (``--evaluation``): ``local`` (default) evaluates both models in the job on its held-out
split, the active model loaded from the store by name; when the active model is not in the store
(trained elsewhere, or pruned), it says so and both models are evaluated by the platform instead, so
the two numbers compared always come from the same test data. ``platform`` always asks the platform.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nlu_ci.errors import ConfigError
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.redact import redact
from nlu_ci.registry.platform import PlatformClient
from nlu_ci.registry.store import ModelStore, iso, now_utc

log = logging.getLogger(__name__)

_clients: dict[int, tuple[Any, PlatformClient]] = {}


def client(settings) -> PlatformClient:
    """One client (one HTTP session) per Settings object."""
    cached = _clients.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, PlatformClient.from_settings(settings))
        _clients[id(settings)] = cached
    return cached[1]


def evaluation_mode(settings, store: ModelStore, active_name: str | None, report: dict | None = None) -> str:
    """``local`` or ``platform``: who evaluates the candidate and the active model in this run."""
    if settings.evaluation == "platform":
        return "platform"
    if active_name and active_name not in store.models():
        warning = (f"active model {active_name} (tag {settings.platform_tag!r} on the platform) is not in the local "
                   f"store {store.dir}: it cannot be evaluated here, so both models are evaluated by the platform")
        log.warning("%s", warning)
        if report is not None:
            report.setdefault("warnings", []).append(warning)
        return "platform"
    return "local"


def upload_for_run(settings, store: ModelStore, staged: Path, name: str, active_name: str | None,
                   report: dict, scratch_dir: Path | None = None) -> str:
    """Decide who evaluates (returned: ``local`` or ``platform``) and upload the candidate.

    The candidate is uploaded in every run that may promote it; a dry run uploads it only when the
    platform has to evaluate it. ``report["platform"]`` records the host, tag, mode and upload.
    """
    mode = evaluation_mode(settings, store, active_name, report)
    c = client(settings)
    section = {"host": redact(c.host), "project": settings.project, "tag": settings.platform_tag,
               "evaluation": mode, "active": active_name, "uploaded": None}
    report["platform"] = section
    if settings.dry_run and mode == "local":
        log.info("dry run: the candidate is not uploaded to the platform")
        return mode
    section["uploaded"] = c.upload_model(staged, name, scratch_dir=scratch_dir)
    return mode


def evaluate_both(settings, store: ModelStore, candidate: str, active: str | None
                  ) -> tuple[EvaluationResult, EvaluationResult | None, Path | None]:
    """The platform's evaluation of the (uploaded) candidate and of the active model (None at bootstrap);
    also the active model's folder when the store has it (for checks that run the model locally)."""
    c = client(settings)
    candidate_result = c.evaluate(c.uploaded.get(candidate, candidate))
    log.info("platform evaluation of %s: intent F1 %.4f", candidate, candidate_result.intent_f1)
    if not active:
        return candidate_result, None, None
    active_result = c.evaluate(active)
    log.info("platform evaluation of %s: intent F1 %.4f", active, active_result.intent_f1)
    return candidate_result, active_result, store.dir / active if active in store.models() else None


def tested_examples(result: EvaluationResult) -> list[dict]:
    """The platform's held-out examples, in its order, as far as its evaluation names them (its
    ``predictions``): the rows of the predictions file when the platform evaluated."""
    return [{"text": u["text"], "intent": u["intent"]} for u in result.utterances]


def promote(settings, store: ModelStore, name: str) -> str | None:
    """Tag ``name`` on the platform, then point the local ACTIVE at it; returns the previously tagged model."""
    c = client(settings)
    previous = c.active_model()
    c.tag(c.uploaded.get(name, name))
    if name in store.models():
        store.activate(name)
    return previous


def status(settings) -> tuple[dict, list[str]]:
    """The platform's view for ``nlu-ci status``: (data, text lines)."""
    c = client(settings)
    models = c.list_models()
    active = next((m["model"] for m in models if settings.platform_tag in m["tags"]), None)
    data = {"host": redact(c.host), "tag": settings.platform_tag, "active": active,
            "previous": c.previous_model(active) if active else None,
            "models": [{"model": m["model"], "tags": m["tags"]} for m in models]}
    lines = [f"platform {data['host']} (project {settings.project}): "
             f"{active or 'no model'} tagged {settings.platform_tag!r}; {len(models)} model(s) uploaded"]
    return data, lines


def rollback_target(settings, store: ModelStore, requested: str | None) -> tuple[str, str | None]:
    """(model to tag, model tagged now) for ``nlu-ci rollback`` against the platform.

    Default target: the local PREVIOUS pointer when the platform has that model, else the newest
    platform model older than the tagged one. ConfigError (exit 2) when there is none or it is unknown.
    """
    c = client(settings)
    names = c.model_names()
    current = c.active_model()
    target = requested
    if target is None:
        local_previous = store.previous_name()
        if local_previous and local_previous != current and local_previous in names:
            target = local_previous
        else:
            target = c.previous_model(current)
    if not target:
        raise ConfigError(f"rollback: no model before {current or 'none'} on the platform; name one: "
                          "nlu-ci rollback MODEL")
    if target not in names:
        raise ConfigError(f"rollback: the platform has no model named {target!r}")
    return target, current


def rollback(settings, store: ModelStore, requested: str | None) -> tuple[str, str | None]:
    """Tag the previous (or ``requested``) model on the platform and move the local pointer; (target, was)."""
    target, current = rollback_target(settings, store, requested)
    if target == current:
        return target, current
    client(settings).tag(target)
    if target in store.models():
        store.activate(target)
    store.append_history({"event": "rollback", "at": iso(now_utc()), "model": target, "previous": current,
                          "outcome": "rollback", "registry": "platform"})
    log.info("rolled back on the platform: %s tagged %r (was %s)", target, settings.platform_tag, current)
    return target, current
