"""The promotion decision: is the candidate good enough to replace the active model?

This module only compares numbers it is given; it knows nothing of files or HTTP.
The classic rule (Rasa's seed script): promote when there is no active model, or when the
candidate's intent weighted F1 is strictly greater than the active model's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    name: str
    passed: bool
    detail: str
    values: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    promote: bool
    checks: list[Check]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reason": self.reason, "checks": [c.to_dict() for c in self.checks]}

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.enabled and not c.passed]


def decide(candidate, active, policy=None) -> Decision:
    """Classic rule; ``candidate``/``active`` are EvaluationResult (active may be None)."""
    if active is None:
        check = Check("bootstrap", True, "no active model: the candidate becomes the first active model",
                      {"candidate_f1": candidate.intent_f1})
        return Decision(True, [check], check.detail)
    gain = candidate.intent_f1 - active.intent_f1
    passed = gain > 0
    check = Check(
        "intent_f1_improved",
        passed,
        f"intent F1 {candidate.intent_f1:.4f} vs active {active.intent_f1:.4f} "
        f"({gain:+.4f}; needs > 0)",
        {"candidate": candidate.intent_f1, "active": active.intent_f1, "gain": gain},
    )
    reason = "candidate improves intent F1" if passed else f"check failed: {check.detail}"
    return Decision(passed, [check], reason)
