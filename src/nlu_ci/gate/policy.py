"""The promotion policy: ``policy.yml`` (+ ``must_pass.yml``) loaded, validated, with documented defaults.

``load_policy(None)`` is the built-in policy, the one the repository's ``policy.yml`` states (docs/policy.md):
non-inferiority (candidate intent F1 not more than 0.01 below the active model's) with the guards that stop a
real regression: McNemar ``not_worse`` at alpha 0.05, no intent (support >= 5) losing more than 0.15 F1, entity
F1 not dropping by more than 0.05; the bootstrap interval is reported, not gating. The seed's strict rule
(F1 must strictly rise) is ``min_improvement: 0.0``.

Every problem is a ``ConfigError`` with one line naming the file and the key. This module reads
files and checks shapes; the checks themselves live in ``nlu_ci.gate``.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from nlu_ci.errors import ConfigError
from nlu_ci.gate import registered
from nlu_ci.yamlfile import read_yaml

DIRECTIONS = ("better", "not_worse", "off")
TESTS = ("mcnemar",)
MAX_RESAMPLES = 1_000_000


@dataclass(frozen=True)
class Significance:
    test: str = "mcnemar"
    alpha: float = 0.05
    direction: str = "not_worse"  # better | not_worse | off

    @property
    def enabled(self) -> bool:
        return self.direction != "off"


@dataclass(frozen=True)
class Bootstrap:
    resamples: int = 2000
    seed: int = 0
    gate: bool = False
    confidence: float = 0.95
    enabled: bool = True  # False: not even computed (``bootstrap: off``)


@dataclass(frozen=True)
class EntityF1:
    min: float | None = 0.0
    max_drop: float | None = 0.05


@dataclass(frozen=True)
class Fallback:
    """The assistant's NLU threshold (Rasa's FallbackPolicy ``nlu_threshold``): below it a prediction is the
    fallback. ``target_precision``: the recommended threshold's goal; ``max_coverage_drop``: the gate check
    (off by default) on the coverage at that target (gate/fallback.py)."""

    threshold: float = 0.3
    target_precision: float = 0.9
    max_coverage_drop: float | None = None


@dataclass(frozen=True)
class MustPass:
    text: str
    intent: str
    entities: tuple[tuple[str, str], ...] | None = None  # (entity, value); None = entities not checked

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "intent": self.intent}
        if self.entities is not None:
            out["entities"] = [{"entity": e, "value": v} for e, v in self.entities]
        return out


def _registered_defaults() -> dict[str, Any]:
    return {module.KEY: module.DEFAULT for module in registered.CHECKS}


@dataclass(frozen=True)
class Policy:
    checks: dict[str, Any] = field(default_factory=_registered_defaults)  # the keys of gate/registered.py's checks
    min_improvement: float | None = None  # the strict rule ("F1 must go up"): min_improvement 0.0, margin None
    non_inferiority_margin: float | None = 0.01  # the default rule (docs/policy.md, "Why non-inferiority")
    significance: Significance = field(default_factory=Significance)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    per_intent_max_drop: float | None = 0.15
    min_support: int = 5
    entity_f1: EntityF1 = field(default_factory=EntityF1)
    must_pass: tuple[MustPass, ...] = ()
    must_pass_file: str | None = None
    max_live_disagreement: float | None = None  # off: the live agreement is reported only (messages/live.py)
    fallback: Fallback = field(default_factory=Fallback)
    source: str = "built-in"

    def to_dict(self) -> dict[str, Any]:
        out = {**self.checks, **asdict(self)}  # a registered check's key at the top level, as policy.yml spells it
        del out["checks"]
        out["must_pass"] = len(self.must_pass)
        return out

    @property
    def min_intent_f1(self) -> float | None:
        return self.checks.get("min_intent_f1")

    def with_check_value(self, key: str, value: Any) -> Policy:
        """This policy with a registered check's value replaced (tests, callers that tune one key)."""
        if key not in self.checks:
            raise KeyError(key)
        return replace(self, checks={**self.checks, key: value})

    def rule(self) -> str:
        """The comparison rule in a few words (for ``nlu-ci status``)."""
        if self.non_inferiority_margin is not None:
            parts = [f"intent F1 at least active - {self.non_inferiority_margin:g}"]
        elif self.min_improvement is not None:
            parts = ["intent F1 above the active model's" if self.min_improvement == 0
                     else f"intent F1 at least active + {self.min_improvement:g}"]
        else:
            parts = []
        if self.significance.direction == "not_worse":
            parts.append(f"not significantly worse (McNemar, alpha {self.significance.alpha:g})")
        elif self.significance.direction == "better":
            parts.append(f"significantly better (McNemar, alpha {self.significance.alpha:g})")
        if self.per_intent_max_drop is not None:
            parts.append(f"no intent losing more than {self.per_intent_max_drop:g} F1")
        if self.must_pass:
            parts.append(f"{len(self.must_pass)} must-pass utterances right")
        return ", ".join(parts) or "every candidate"

    def check_must_pass_intents(self, intents) -> None:
        """ConfigError (exit 2, one line) when the must-pass file expects intents the data has no example of:
        no candidate could ever pass, so the run stops before training."""
        known = set(intents)
        missing = sorted({item.intent for item in self.must_pass} - known)
        if missing:
            more = f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""
            raise ConfigError(f"{self.source}: must_pass: {self.must_pass_file}: {len(missing)} intent(s) the "
                              f"training data has no example of: {', '.join(missing[:8])}{more} "
                              f"(the data has {len(known)} intents)")


DEFAULT = Policy()

# key -> (kind, description used in messages)
_TOP = {
    **{module.KEY: module.KIND for module in registered.CHECKS}, "min_improvement": "fraction", "non_inferiority_margin": "fraction",
    "significance": "section", "bootstrap": "section", "per_intent_max_drop": "fraction",
    "min_support": "count", "entity_f1": "section", "must_pass": "path",
    "max_live_disagreement": "fraction", "fallback": "section", "fallback_threshold": "fraction",
}
_SIGNIFICANCE = ("test", "alpha", "direction")
_BOOTSTRAP = ("resamples", "seed", "gate", "confidence")
_ENTITY = ("min", "max_drop")
_FALLBACK = ("threshold", "target_precision", "max_coverage_drop")
_MUST_PASS_ITEM = ("text", "intent", "entities")
_MUST_PASS_ENTITY = ("entity", "value")


def _off(value: Any) -> bool:
    """YAML 1.1 reads a bare ``off``/``no``/``false`` as False; ``null`` is None: all mean switched off."""
    return value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none"))


def _unknown(where: str, key: Any, allowed) -> ConfigError:
    hint = difflib.get_close_matches(str(key), list(allowed), n=1)
    suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
    return ConfigError(f"{where}: unknown key '{key}'{suggestion}; allowed: {', '.join(allowed)}")


def _check_keys(where: str, mapping: dict, allowed) -> None:
    for key in mapping:
        if key not in allowed:
            raise _unknown(where, key, allowed)


def _type_name(value: Any) -> str:
    return {bool: "a boolean", str: "a string", list: "a list", dict: "a mapping",
            type(None): "null"}.get(type(value), type(value).__name__)


def _number(where: str, key: str, value: Any, low: float, high: float, *, low_open: bool = False,
            high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: '{key}' must be a number, got {_type_name(value)} {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{where}: '{key}' must be in {interval}, got {value:g}")
    return value


def _integer(where: str, key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: '{key}' must be an integer, got {_type_name(value)} {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: '{key}' must be between {low} and {high}, got {value}")
    return value


def _optional_fraction(where: str, key: str, value: Any) -> float | None:
    return None if _off(value) else _number(where, key, value, 0.0, 1.0)


def _count(where: str, key: str, value: Any) -> int | None:
    return None if _off(value) else _integer(where, key, value, 0, 10**9)


# how a registered check's key is read (gate/registered.py): kind -> (where, key, value) -> value
_KINDS = {"fraction": _optional_fraction, "count": _count}


def _section(where: str, key: str, value: Any, allowed: tuple[str, ...]) -> dict | None:
    if _off(value):
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: '{key}' must be a mapping ({', '.join(allowed)}) or off, "
                          f"got {_type_name(value)} {value!r}")
    _check_keys(f"{where}: {key}", value, allowed)
    return value


def _significance(where: str, raw: Any) -> Significance:
    section = _section(where, "significance", raw, _SIGNIFICANCE)
    if section is None:
        return Significance(direction="off")
    test = section.get("test", Significance.test)
    if test not in TESTS:
        raise ConfigError(f"{where}: 'significance.test' must be one of {', '.join(TESTS)}, got {test!r}")
    alpha = _number(where, "significance.alpha", section.get("alpha", Significance.alpha), 0.0, 1.0,
                    low_open=True, high_open=True)
    direction = section.get("direction", Significance.direction)
    direction = "off" if _off(direction) else direction
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: 'significance.direction' must be one of {', '.join(DIRECTIONS)}, "
                          f"got {direction!r}")
    return Significance(test=test, alpha=alpha, direction=direction)


def _bootstrap(where: str, raw: Any) -> Bootstrap:
    section = _section(where, "bootstrap", raw, _BOOTSTRAP)
    if section is None:
        return Bootstrap(enabled=False, gate=False)
    gate = section.get("gate", Bootstrap.gate)
    if not isinstance(gate, bool):
        raise ConfigError(f"{where}: 'bootstrap.gate' must be true or false, got {_type_name(gate)} {gate!r}")
    return Bootstrap(
        resamples=_integer(where, "bootstrap.resamples", section.get("resamples", Bootstrap.resamples), 100, MAX_RESAMPLES),
        seed=_integer(where, "bootstrap.seed", section.get("seed", Bootstrap.seed), 0, 2**63 - 1),
        gate=gate,
        confidence=_number(where, "bootstrap.confidence", section.get("confidence", Bootstrap.confidence), 0.0, 1.0,
                           low_open=True, high_open=True),
    )


def _entity_f1(where: str, raw: Any) -> EntityF1:
    section = _section(where, "entity_f1", raw, _ENTITY)
    if section is None:
        return EntityF1(min=None, max_drop=None)
    return EntityF1(min=_optional_fraction(where, "entity_f1.min", section.get("min", EntityF1.min)),
                    max_drop=_optional_fraction(where, "entity_f1.max_drop", section.get("max_drop", EntityF1.max_drop)))


def _fallback(where: str, raw: dict) -> Fallback:
    """``fallback: {threshold, target_precision, max_coverage_drop}``; ``fallback_threshold`` (top level) is the
    same as ``fallback.threshold``."""
    section = _section(where, "fallback", raw.get("fallback", {}), _FALLBACK) or {}
    if "fallback_threshold" in raw and "threshold" in section:
        raise ConfigError(f"{where}: set either 'fallback_threshold' or 'fallback.threshold', not both")
    threshold = raw.get("fallback_threshold", section.get("threshold", Fallback.threshold))
    key = "fallback_threshold" if "fallback_threshold" in raw else "fallback.threshold"
    return Fallback(
        threshold=_number(where, key, threshold, 0.0, 1.0),
        target_precision=_number(where, "fallback.target_precision",
                                 section.get("target_precision", Fallback.target_precision), 0.0, 1.0,
                                 low_open=True),
        max_coverage_drop=_optional_fraction(where, "fallback.max_coverage_drop", section.get("max_coverage_drop")))


def _read_yaml(path: Path, what: str, where: str | None = None) -> Any:
    data, _ = read_yaml(path, what, where)
    if data is None:
        raise ConfigError(f"{where or path}: {what} is empty")
    return data


def _must_pass_entities(where: str, i: int, text: str, raw: Any) -> tuple[tuple[str, str], ...]:
    label = f"{where}: item {i} ({text[:40]!r})"
    if not isinstance(raw, list):
        raise ConfigError(f"{label}: 'entities' must be a list of {{entity, value}}, got {_type_name(raw)}")
    out = []
    for j, ent in enumerate(raw):
        if not isinstance(ent, dict):
            raise ConfigError(f"{label}: entities[{j}] must be a mapping with 'entity' and 'value'")
        _check_keys(f"{label}: entities[{j}]", ent, _MUST_PASS_ENTITY)
        name, value = ent.get("entity"), ent.get("value")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{label}: entities[{j}] needs an 'entity' name (a string)")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{label}: entities[{j}] ('{name}') needs a 'value' (a string or number)")
        out.append((name, str(value)))
    return tuple(sorted(out))


def load_must_pass(path: Path | str, where: str | None = None) -> tuple[MustPass, ...]:
    """``must_pass.yml``: a list of ``{text, intent, entities?}``, or a mapping ``text: intent``."""
    path = Path(path)
    raw = _read_yaml(path, "must-pass file", where)
    if isinstance(raw, dict):
        raw = [{"text": t, "intent": i} for t, i in raw.items()]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{path}: must be a non-empty list of {{text, intent, entities}} "
                          f"(or a mapping text: intent), got {_type_name(raw)}")
    items: dict[str, MustPass] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: item {i} must be a mapping with 'text' and 'intent', got {_type_name(item)}")
        _check_keys(f"{path}: item {i}", item, _MUST_PASS_ITEM)
        text, intent = item.get("text"), item.get("intent")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{path}: item {i}: 'text' must be a non-empty string")
        if not isinstance(intent, str) or not intent.strip():
            raise ConfigError(f"{path}: item {i} ({text[:40]!r}): 'intent' must be a non-empty string")
        entities = _must_pass_entities(str(path), i, text, item["entities"]) if "entities" in item else None
        entry = MustPass(text=text, intent=intent, entities=entities)
        if text in items and items[text] != entry:
            raise ConfigError(f"{path}: item {i} ({text[:40]!r}) repeats an earlier text with other expectations")
        items[text] = entry
    return tuple(items.values())


def _comparison_rule(where: str, raw: dict) -> tuple[float | None, float | None]:
    """(min_improvement, non_inferiority_margin): one comparison rule. Either key in the file decides it alone
    (``min_improvement: 0.0`` is the strict rule, the other key then off; both keys ``off``: no comparison);
    neither key: the built-in rule."""
    if "min_improvement" not in raw and "non_inferiority_margin" not in raw:
        return DEFAULT.min_improvement, DEFAULT.non_inferiority_margin
    margin = _optional_fraction(where, "non_inferiority_margin", raw.get("non_inferiority_margin"))
    if margin is not None:
        return None, margin
    return _optional_fraction(where, "min_improvement", raw.get("min_improvement")), None


def parse_policy(raw: Any, where: str, base_dir: Path | None = None) -> Policy:
    """Validate a loaded policy mapping; ``where`` names it in errors; must_pass relative to ``base_dir``."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a policy must be a mapping of keys ({', '.join(_TOP)}), got {_type_name(raw)}")
    _check_keys(where, raw, _TOP)
    if "min_improvement" in raw and "non_inferiority_margin" in raw \
            and not _off(raw["min_improvement"]) and not _off(raw["non_inferiority_margin"]):
        raise ConfigError(f"{where}: set either 'min_improvement' or 'non_inferiority_margin', not both")
    improvement, margin = _comparison_rule(where, raw)
    must_pass_file, must_pass = None, ()
    if not _off(raw.get("must_pass")):
        value = raw["must_pass"]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: 'must_pass' must be a file path (relative to the policy file), "
                              f"got {_type_name(value)} {value!r}")
        mp_path = Path(value)
        if not mp_path.is_absolute():
            mp_path = (base_dir or Path.cwd()) / mp_path
        must_pass = load_must_pass(mp_path, where=f"{where}: must_pass: {mp_path}")
        must_pass_file = str(mp_path)
    return Policy(
        checks={m.KEY: _KINDS[m.KIND](where, m.KEY, raw.get(m.KEY, m.DEFAULT)) for m in registered.CHECKS},
        min_improvement=improvement,
        non_inferiority_margin=margin,
        significance=_significance(where, raw.get("significance", {})),
        bootstrap=_bootstrap(where, raw.get("bootstrap", {})),
        per_intent_max_drop=_optional_fraction(where, "per_intent_max_drop", raw.get("per_intent_max_drop", DEFAULT.per_intent_max_drop)),
        min_support=_integer(where, "min_support", raw.get("min_support", DEFAULT.min_support), 0, 10**9),
        entity_f1=_entity_f1(where, raw.get("entity_f1", {})),
        must_pass=must_pass,
        must_pass_file=must_pass_file,
        max_live_disagreement=_optional_fraction(where, "max_live_disagreement", raw.get("max_live_disagreement")),
        fallback=_fallback(where, raw),
        source=where,
    )


def load_policy(path: Path | str | None) -> Policy:
    """The policy in ``path`` (policy.yml), or the built-in default policy when ``path`` is None."""
    if path is None:
        return DEFAULT
    path = Path(path)
    raw = _read_yaml(path, "policy file")
    return parse_policy(raw, str(path), path.parent)

