"""The registry backends, chosen by name: ``--registry NAME`` (``NLU_CI_REGISTRY``); ``auto`` (the default) takes
the first in ``BACKENDS`` whose ``from_settings`` answers (the platform when ``RASA_PLATFORM_HOST`` is set, else
the local store).

Adding a backend: one module and one line in ``BACKENDS``. The module declares ``NAME`` (its ``--registry``
value), ``OPTIONS`` (its ``Option``s: ``settings`` gathers them, the commands that use a registry take them as
flags), optionally ``validate(settings)`` (its rules, one ``ConfigError`` line) and
``from_settings(settings, store) -> Registry | None`` (None: not configured).
"""
from __future__ import annotations

from nlu_ci.errors import ConfigError
from nlu_ci.option import Option
from nlu_ci.registry import local, platform_registry
from nlu_ci.registry.base import Registry
from nlu_ci.registry.store import ModelStore

BACKENDS = [
    platform_registry,  # RASA_PLATFORM_HOST set
    local,              # always: the store alone
]

OPTIONS = [
    Option("registry", "NLU_CI_REGISTRY", "auto",
           "where the serving model is recorded; auto: the first configured of " + ", ".join(b.NAME for b in BACKENDS),
           "choice", ("auto", *(b.NAME for b in BACKENDS))),
]


def option_names() -> list[str]:
    """``--registry`` and every backend's options (flags of the commands that use a registry)."""
    return [o.name for o in OPTIONS] + [o.name for b in BACKENDS for o in b.OPTIONS]


def build(settings) -> Registry:
    """The registry for these settings (built once per command)."""
    store = ModelStore(settings.models_dir, settings.project)
    wanted = getattr(settings, "registry", "auto")
    for backend in BACKENDS:
        if wanted in ("auto", backend.NAME):
            registry = backend.from_settings(settings, store)
            if registry is not None:
                return registry
            if wanted == backend.NAME:
                needs = ", ".join(o.env for o in backend.OPTIONS[:1])
                raise ConfigError(f"--registry {wanted} / NLU_CI_REGISTRY: the {wanted} backend is not configured"
                                  + (f" (set {needs})" if needs else ""))
    raise AssertionError("the local registry always answers")
