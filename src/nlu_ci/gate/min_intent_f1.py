"""Gate check ``min_intent_f1``: the candidate's intent F1 on the held-out data is at least a floor.

A gate check module declares its policy key (``KEY``, how ``policy.yml`` spells it; also the check's name), how the
key is read (``KIND``: ``fraction`` = a number in [0, 1] or ``off``), its built-in value (``DEFAULT``; None: off)
and ``check(candidate, active, value) -> Check`` over the two ``EvaluationResult``s (``active`` None: no active
model). ``gate/registered.py`` lists the modules; ``gate.policy`` reads their keys, ``gate.decide`` runs them.
"""
from __future__ import annotations

from nlu_ci.gate.result import EPS, Check, na

KEY = "min_intent_f1"
KIND = "fraction"
DEFAULT = 0.0  # the floor the repository's policy.yml states (docs/policy.md)


def check(candidate, active, floor: float | None) -> Check:
    if floor is None:
        return na(KEY, "switched off", candidate=candidate.intent_f1)
    passed = candidate.intent_f1 >= floor - EPS
    return Check(KEY, passed, f"intent F1 {candidate.intent_f1:.4f} {'>=' if passed else '<'} floor {floor:.4f}",
                 {"candidate": candidate.intent_f1, "threshold": floor})
