"""The run report as typed values: the run, its data, each model's scores, the decision.

Stages return these values and ``pipeline.run`` puts them together; channels, the review page and the
summaries read attributes. ``RunReport.to_dict()`` is exactly the JSON of docs/architecture.md ("Run
report"; keys stable), ``RunReport.from_dict`` reads one back (a stored report, an older one, a test's),
tolerating a missing or malformed section: it becomes ``None``, never an exception.

Sections that are not modelled here (``metrics``, ``notification``, ``platform``, ``restart``, ...) are
plain dicts in ``RunReport.sections``. ``report[key]`` / ``report.get(key)`` / ``report[key] = value`` read
and write the JSON view, for the few writers that still take the report (``registry``, ``kube.restart``).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("promoted", "rejected", "skipped", "locked", "failed", "dry_run")
SCORE_KEYS = ("intent_f1", "intent_accuracy", "intent_macro_f1", "intent_precision", "entity_f1",
              "entity_precision", "entity_recall", "entity_token_f1", "entity_token_precision",
              "entity_token_accuracy", "per_intent")


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


@dataclass
class ModelScores:
    """The ``candidate`` / ``active`` section: which model, and its scores on the held-out test set."""

    model: str | None
    path: str | None
    scores: dict[str, Any] = field(default_factory=dict)  # SCORE_KEYS (None when unknown)
    per_entity: Any = None
    evaluated_by: Any = None
    evaluated: bool = False       # per_entity/evaluated_by are part of the section (an evaluation ran)
    config: str | None = None     # the candidate's config file
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_result(cls, name: str | None, path: Any, result=None, **extra: Any) -> ModelScores:
        summary = result.summary() if result is not None else {}
        config = extra.pop("config", None)
        return cls(name, str(path) if path else None, {k: summary.get(k) for k in SCORE_KEYS},
                   summary.get("per_entity"), summary.get("evaluated_by"), result is not None, config, extra)

    @classmethod
    def from_dict(cls, raw: Any) -> ModelScores | None:
        raw = _mapping(raw)
        if raw is None:
            return None
        known = {"model", "path", "per_entity", "evaluated_by", "config", *SCORE_KEYS}
        return cls(raw.get("model"), raw.get("path"), {k: raw.get(k) for k in SCORE_KEYS}, raw.get("per_entity"),
                   raw.get("evaluated_by"), "per_entity" in raw or "evaluated_by" in raw, raw.get("config"),
                   {k: v for k, v in raw.items() if k not in known})

    def __getattr__(self, name: str) -> Any:  # scores.intent_f1, scores.per_intent, ...
        if name in SCORE_KEYS:
            return self.__dict__.get("scores", {}).get(name)
        raise AttributeError(name)

    def metrics(self) -> dict[str, Any]:
        """The section without model, path and config: what a model's metadata keeps."""
        out = self.to_dict()
        for key in ("model", "path", "config"):
            out.pop(key, None)
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "path": self.path}
        out.update({k: self.scores.get(k) for k in SCORE_KEYS})
        if self.evaluated:
            out.update(per_entity=self.per_entity, evaluated_by=self.evaluated_by)
        if self.config is not None:
            out["config"] = self.config
        out.update(self.extra)
        return out


@dataclass
class CheckResult:
    """One gate check as the report shows it."""

    name: Any
    passed: bool
    detail: Any = None
    values: Any = field(default_factory=dict)
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Enabled and not passed (a disabled check never blocks, so its failure is not news)."""
        return bool(self.enabled) and not self.passed

    @classmethod
    def from_dict(cls, raw: Any) -> CheckResult | None:
        raw = _mapping(raw)
        if raw is None:
            return None
        known = ("name", "passed", "detail", "values", "enabled")
        return cls(raw.get("name"), raw.get("passed"), raw.get("detail"), raw.get("values"),
                   raw.get("enabled", True), {k: v for k, v in raw.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "values": self.values,
                "enabled": self.enabled, **self.extra}


@dataclass
class DecisionRecord:
    """The gate's decision: promote or not, why, and every check."""

    promote: bool
    reason: Any
    checks: list[CheckResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. "policy"

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @classmethod
    def from_dict(cls, raw: Any) -> DecisionRecord | None:
        raw = _mapping(raw)
        if raw is None:
            return None
        checks = [c for c in map(CheckResult.from_dict, raw.get("checks") or []) if c is not None]
        return cls(raw.get("promote"), raw.get("reason"), checks,
                   {k: v for k, v in raw.items() if k not in ("promote", "reason", "checks")})

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, "checks": [c.to_dict() for c in self.checks],
                **self.extra}


@dataclass
class DataInfo:
    """The ``data`` section: what was trained and tested on, and what the data checks found."""

    fingerprint: Any = None
    source: Any = None
    examples: Any = None
    train_examples: Any = None
    test_examples: Any = None
    intents: list = field(default_factory=list)
    split: Any = field(default_factory=dict)
    revision: Any = None  # the commit the data came from (--data-git-url), else None
    quality: dict[str, Any] = field(default_factory=dict)  # repairs, notes, validation (the validate stage)
    validation_examples: int | None = None                 # several configs: the selection's validation split
    extra: dict[str, Any] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # keys a stored report did not have: they stay absent

    BASE = ("fingerprint", "source", "revision", "examples", "train_examples", "test_examples", "intents", "split")
    QUALITY = ("repaired_examples", "repairs", "test_repairs", "notes", "skipped_files", "validation")

    @property
    def repaired_examples(self) -> Any:
        return self.quality.get("repaired_examples")

    @classmethod
    def from_dict(cls, raw: Any) -> DataInfo | None:
        raw = _mapping(raw)
        if raw is None:
            return None
        info = cls(**{k: raw[k] for k in cls.BASE if k in raw})
        info.intents = list(raw.get("intents") or [])
        info.quality = {k: raw[k] for k in cls.QUALITY if k in raw}
        info.validation_examples = raw.get("validation_examples")
        info.extra = {k: v for k, v in raw.items() if k not in (*cls.BASE, *cls.QUALITY, "validation_examples")}
        info.absent = tuple(k for k in cls.BASE if k not in raw)
        return info

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.BASE if k not in self.absent}
        out.update(self.quality)
        if self.validation_examples is not None:
            out["validation_examples"] = self.validation_examples
        out.update(self.extra)
        return out


@dataclass
class FallbackInfo:
    """The ``fallback`` section (gate/fallback.py): the policy's threshold and target precision, how many in-scope
    and out-of-scope messages were scored, and per model (``candidate``, ``active``: a dict or None) the numbers
    at the policy threshold (``threshold, answered, coverage, precision, out_of_scope_answered, intent_f1,
    accuracy``) and ``recommended`` (the same at the lowest threshold reaching the target precision, ``reached``)."""

    threshold: Any = None
    target_precision: Any = None
    in_scope: Any = None
    out_of_scope: Any = None
    out_of_scope_sources: Any = None
    candidate: Mapping[str, Any] | None = None
    active: Mapping[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    KEYS = ("threshold", "target_precision", "in_scope", "out_of_scope", "out_of_scope_sources")

    def model(self, which: str) -> Mapping[str, Any]:
        """``candidate`` / ``active`` part, ``{}`` when absent; ``model(w).get("recommended")`` likewise a dict."""
        return _mapping(getattr(self, which, None)) or {}

    @classmethod
    def from_dict(cls, raw: Any) -> FallbackInfo | None:
        raw = _mapping(raw)
        if raw is None:
            return None
        return cls(**{k: raw.get(k) for k in cls.KEYS}, candidate=_mapping(raw.get("candidate")),
                   active=_mapping(raw.get("active")),
                   extra={k: v for k, v in raw.items() if k not in (*cls.KEYS, "candidate", "active")})

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.KEYS}, "candidate": self.candidate, "active": self.active,
                **self.extra}


SECTION_TYPES = {"data": DataInfo, "candidate": ModelScores, "active": ModelScores, "decision": DecisionRecord,
                 "fallback": FallbackInfo}


@dataclass
class RunReport:
    """One run: its outcome and the sections above; ``to_dict()`` is the report JSON."""

    project: Any = None
    started_at: Any = None
    outcome: str | None = None
    finished_at: Any = None
    error: str | None = None
    exit_code: int | None = None
    data: DataInfo | None = None
    candidate: ModelScores | None = None
    active: ModelScores | None = None
    decision: DecisionRecord | None = None
    durations: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)  # metrics, notification, review_page, pruned, ...

    FIELDS = ("outcome", "project", "started_at", "finished_at", "error", "exit_code", "data", "candidate",
              "active", "decision", "durations", "warnings")

    def warn(self, message: str, logger: logging.Logger) -> None:
        """A warning of the run: logged (by the stage's logger) and kept in ``warnings``."""
        logger.warning("%s", message)
        self.warnings.append(message)

    def end(self, outcome: str, exit_code: int, error: str | None = None) -> None:
        self.outcome, self.exit_code, self.error = outcome, exit_code, error

    def section(self, key: str) -> Mapping[str, Any]:
        """An unmodelled section (``review_page``, ``statistics``, ...), ``{}`` when absent or malformed."""
        return _mapping(self.sections.get(key)) or {}

    @property
    def fallback(self) -> FallbackInfo | None:
        value = self.sections.get("fallback")
        return value if isinstance(value, FallbackInfo) else None

    # ---------------------------------------------------------------- JSON
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunReport:
        report = cls()
        for key, value in raw.items():
            report[key] = value
        return report

    @classmethod
    def coerce(cls, report: RunReport | Mapping[str, Any]) -> RunReport:
        return report if isinstance(report, RunReport) else cls.from_dict(report if isinstance(report, Mapping)
                                                                         else {})

    def to_dict(self) -> dict[str, Any]:
        out = {key: self._json(key) for key in self.FIELDS}
        out.update({k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in self.sections.items()})
        return out

    def _json(self, key: str) -> Any:
        value = getattr(self, key)
        return value.to_dict() if hasattr(value, "to_dict") else value

    # ---------------------------------------------------------------- the JSON view, for dict writers
    def __getitem__(self, key: str) -> Any:
        if key in self.FIELDS:
            return self._json(key)  # durations and warnings: the live dict and list
        value = self.sections[key]
        return value.to_dict() if hasattr(value, "to_dict") else value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in SECTION_TYPES:
            value = value if isinstance(value, SECTION_TYPES[key]) else SECTION_TYPES[key].from_dict(value)
        if key in ("durations", "warnings"):
            value = value if isinstance(value, (dict, list)) else ({} if key == "durations" else [])
        if key in self.FIELDS:
            setattr(self, key, value)
        else:
            self.sections[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.FIELDS or key in self.sections

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **values: Any) -> None:
        for key, value in dict(*args, **values).items():
            self[key] = value

    def copy(self) -> RunReport:
        return dataclasses.replace(self, durations=dict(self.durations), warnings=list(self.warnings),
                                   sections=dict(self.sections))
