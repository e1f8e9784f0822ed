"""What the gate decides: one ``Check`` per rule, and the ``Decision`` over them (a leaf of ``gate``: check modules
import it without importing the decision)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EPS = 1e-12  # float slack for ">= threshold" comparisons of F1 differences


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
    policy: str | None = None  # where the policy came from: "built-in" or the policy file
    has_active: bool = True  # False: there was no active model to keep

    def to_dict(self) -> dict[str, Any]:
        out = {"promote": self.promote, "reason": self.reason, "checks": [c.to_dict() for c in self.checks],
               "verdict": self.verdict}
        if self.policy is not None:
            out["policy"] = self.policy
        return out

    @property
    def verdict(self) -> str:
        """What happens, in words: never "keep the active model" when there is none."""
        if self.promote:
            return "promote"
        return "keep the active model" if self.has_active else "do not promote (no active model to keep)"

    @property
    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.enabled and not c.passed]

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


def na(name: str, why: str, **values: Any) -> Check:
    return Check(name, True, f"not applicable: {why}", dict(values), enabled=False)
