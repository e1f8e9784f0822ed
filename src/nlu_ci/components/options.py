"""Check a component's options when it is built, so a bad value in nlu_config.yml is a one-line ConfigError
naming the config file (exit 2) and not a crash deep inside training (exit 1).

rasa_nlu builds the components in ``Trainer(cfg)``; ``engine.training.train`` turns the ValueError raised
here into ``<config file>: cannot build the pipeline: <component>: <option> ...``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _fail(component: str, key: str, value: Any, expected: str) -> None:
    raise ValueError(f"{component}: option {key!r} must be {expected}, got {_shown(value)}")


def number(config: Mapping[str, Any], component: str, key: str, *, low: float = 0.0, strict: bool = True,
           optional: bool = False) -> None:
    """A finite real number above ``low`` (or at least ``low`` when not ``strict``)."""
    value = config.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or (value <= low if strict else value < low):
        _fail(component, key, value, f"a finite number {'>' if strict else '>='} {low:g}")


def whole(config: Mapping[str, Any], component: str, key: str, *, low: int = 0, high: int = 10**9,
          optional: bool = False) -> None:
    value = config.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(component, key, value, f"a whole number from {low} to {high}")


def choice(config: Mapping[str, Any], component: str, key: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if config.get(key) not in choices:
        _fail(component, key, config.get(key), "one of " + ", ".join(choices))


def ngram_range(config: Mapping[str, Any], component: str, key: str, *, optional: bool = False) -> None:
    value = config.get(key)
    if value is None and optional:
        return
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 20 for v in value) and value[0] <= value[1]
    if not ok:
        _fail(component, key, value, "[low, high] with 1 <= low <= high <= 20")


def one_of(config: Mapping[str, Any], component: str, key: str, allowed: tuple) -> None:
    """One of ``allowed`` values of any type, compared by type as well (``1`` is not ``True``)."""
    value = config.get(key)
    if not any(type(value) is type(a) and value == a for a in allowed):
        _fail(component, key, value, "one of " + ", ".join(_shown(a) for a in allowed))
