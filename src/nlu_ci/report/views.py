"""What every reader of a run report shows the same way, written once: the outcomes, the failed checks,
the McNemar p-value, the review page's address and the number formats."""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nlu_ci.report.model import OUTCOMES, CheckResult, RunReport

__all__ = ["OUTCOMES", "failed_checks", "fmt", "mcnemar_p_value", "number", "review_link", "signed"]


def number(value: Any) -> float | None:
    """A finite number, or None (bools, strings, NaN are not numbers here)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def fmt(value: Any, digits: int = 4, missing: str = "–") -> str:
    """``0.8123``-style, or ``missing`` when there is no number."""
    return missing if isinstance(value, bool) or not isinstance(value, (int, float)) else f"{value:.{digits}f}"


def signed(value: Any, digits: int = 4, missing: str = "–") -> str:
    return missing if isinstance(value, bool) or not isinstance(value, (int, float)) else f"{value:+.{digits}f}"


def delta(candidate: Any, active: Any) -> float | None:
    """candidate - active when both are numbers."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (candidate, active))
    return candidate - active if numeric else None


def failed_checks(report: RunReport) -> list[CheckResult]:
    """The enabled gate checks that failed (disabled checks never block, so they are not news)."""
    return report.decision.failed_checks if report.decision is not None else []


def mcnemar_p_value(report: RunReport) -> float | None:
    """The gate's McNemar p-value: check ``significance``'s ``values.p_value`` (or ``p``), else
    ``statistics.mcnemar.p_value``; None when the run has none."""
    check = report.decision.check("significance") if report.decision is not None else None
    values = check.values if check is not None and isinstance(check.values, Mapping) else {}
    p_value = number(values.get("p_value", values.get("p")))
    if p_value is not None:
        return p_value
    mcnemar = report.section("statistics").get("mcnemar")
    return number(mcnemar.get("p_value")) if isinstance(mcnemar, Mapping) else None


def review_link(report: RunReport) -> str | None:
    """The review page's URL, else its path, else None."""
    page = report.section("review_page")
    return page.get("url") or page.get("path") or None
