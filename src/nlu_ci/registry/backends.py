"""The registry backends, in order: the first whose ``from_settings`` answers is used.

Adding a backend: one module with ``from_settings(settings, store) -> Registry | None`` and one line here.
"""
from __future__ import annotations

from nlu_ci.registry import local, platform_registry
from nlu_ci.registry.base import Registry
from nlu_ci.registry.store import ModelStore

BACKENDS = [
    platform_registry.from_settings,  # RASA_PLATFORM_HOST set
    local.from_settings,              # always: the store alone
]


def build(settings) -> Registry:
    """The registry for these settings (built once per command)."""
    store = ModelStore(settings.models_dir, settings.project)
    for factory in BACKENDS:
        registry = factory(settings, store)
        if registry is not None:
            return registry
    raise AssertionError("the local registry always answers")
