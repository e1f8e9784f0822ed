"""What a pipeline config may make nlu-ci do, checked before rasa_nlu sees it.

Components: rasa_nlu resolves a component ``name`` that is not in its registry by importing it as a
module path, so ``name: this.s`` would run any importable module during validation. Only rasa_nlu's
registry names and class paths under an allowed module prefix are accepted: ``nlu_ci.components.`` plus
the comma-separated prefixes of ``NLU_CI_COMPONENT_MODULES`` (e.g. ``mycompany.nlu.``). Anything else is
a ConfigError (exit 2) before any import.

Requirements: each component's ``requires`` (rasa_nlu's own class attribute, e.g. ``text_features`` for
``SklearnIntentClassifier``) must be in the ``provides`` of a component before it, the check rasa_nlu makes
only once training has started ('Missing property'); here it is a ConfigError naming the component.

Variables: rasa_nlu expands ``${VAR}`` in a config from the environment, which would copy a secret
(``${RASA_API_TOKEN}``) into the model's metadata.json. nlu-ci expands only variables whose name starts
with ``NLU_CI_VAR_`` (an allow-list: a deny-list cannot know every secret a pod's environment holds), and
never one whose value contains a registered secret; any other ``${...}`` is a ConfigError naming it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from nlu_ci import redact
from nlu_ci.errors import ConfigError

BUILTIN_PREFIXES = ("nlu_ci.components.",)
MODULES_ENV = "NLU_CI_COMPONENT_MODULES"
VAR_PREFIX = "NLU_CI_VAR_"
_VAR = re.compile(r"\$\{([^}]*)\}")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def allowed_prefixes(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    environ = os.environ if environ is None else environ
    extra = [p.strip() for p in environ.get(MODULES_ENV, "").split(",") if p.strip()]
    return BUILTIN_PREFIXES + tuple(p if p.endswith(".") else p + "." for p in extra)


def check_component_name(name: str, where: str, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError unless ``name`` is a rasa_nlu registry name or a class path under an allowed prefix."""
    from rasa_nlu import registry

    if name in registry.registered_components:
        return
    prefixes = allowed_prefixes(environ)
    if _DOTTED.match(name) and name.startswith(prefixes):
        return
    shown = name if len(name) <= 80 else name[:80] + "..."
    raise ConfigError(f"{where}: unknown component {shown!r}: not a rasa_nlu component and not under an allowed "
                      f"module prefix ({', '.join(prefixes)}; add yours to {MODULES_ENV})")


def check_requirements(classes: list[tuple[str, type]], where: str) -> None:
    """ConfigError when a component of ``classes`` ((name, class) in pipeline order) needs a property that no
    component before it provides (rasa_nlu's ``components.validate_arguments``, before any training)."""
    provided: set[str] = set()
    for i, (name, cls) in enumerate(classes):
        missing = [r for r in (getattr(cls, "requires", None) or []) if r not in provided]
        if missing:
            givers = "" if i else " (it is the first component)"
            raise ConfigError(f"{where}: pipeline[{i}] {name!r} needs {', '.join(map(repr, missing))}, which no "
                              f"component before it provides{givers}: add one that does (a tokenizer provides "
                              "'tokens', a featurizer such as CountVectorsFeaturizer 'text_features') before it")
        provided.update(getattr(cls, "provides", None) or [])


def expand_variables(value: Any, where: str, environ: Mapping[str, str] | None = None, path: str = "") -> Any:
    """``value`` (parsed YAML) with ``${NLU_CI_VAR_*}`` expanded in every string; ConfigError on any other."""
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand_variables(v, where, environ, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_variables(v, where, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        shown = name if len(name) <= 60 else name[:60] + "..."
        if not name.startswith(VAR_PREFIX):
            raise ConfigError(f"{where}: {path}: ${{{shown}}}: only variables named {VAR_PREFIX}* are expanded "
                              "(a secret must never reach a model)")
        if name not in environ:
            raise ConfigError(f"{where}: {path}: ${{{shown}}} is not set")
        expanded = environ[name]
        if redact.redact(expanded) != expanded:
            raise ConfigError(f"{where}: {path}: ${{{shown}}} holds a secret: refused")
        return expanded

    return _VAR.sub(substitute, value)
