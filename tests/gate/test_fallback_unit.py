"""gate/fallback.py on hand-made predictions (no training): the threshold boundary, ties, out-of-scope answers,
the coverage check; and the policy's fallback keys (one line, exit 2, per mistake)."""
from __future__ import annotations

import pytest

from nlu_ci.errors import ConfigError
from nlu_ci.gate import Decision, fallback
from nlu_ci.gate import policy as pol


def u(intent, predicted, confidence):
    return {"intent": intent, "predicted_intent": predicted, "confidence": confidence, "correct": intent == predicted}


UTTERANCES = [u("a", "a", 0.9), u("a", "a", 0.6), u("b", "b", 0.6), u("b", "a", 0.5), u("a", "a", 0.3),
              u("b", "out_of_scope", 0.95), u("out_of_scope", "a", 0.7), u("out_of_scope", "out_of_scope", 0.8)]
FILE = [{"intent": "b", "confidence": 0.3}, {"intent": None, "confidence": 0.0}]


def test_a_confidence_equal_to_the_threshold_is_answered():
    inside, outside = fallback.items(UTTERANCES, FILE)
    at = fallback.at_threshold(inside, outside, 0.3)
    # in scope: 6, answerable (not out_of_scope) 5, all >= 0.3; right 4; out of scope answered: 0.7 and the file's 0.3
    assert at["answered"] == 5 and at["coverage"] == pytest.approx(5 / 6)
    assert at["out_of_scope_answered"] == 2 and at["precision"] == pytest.approx(4 / 7)
    assert fallback.at_threshold(inside, outside, 0.31)["out_of_scope_answered"] == 1


def test_the_recommendation_is_the_lowest_threshold_reaching_the_target_and_ties_enter_together():
    inside, outside = fallback.items(UTTERANCES, FILE)
    # answers by confidence: 0.9 right, 0.7 oos, 0.6 right + 0.6 right (a tie), 0.5 wrong, 0.3 right + 0.3 oos
    # precision: 1, 1/2, 3/4, 3/5, 4/7
    rec = fallback.recommend(inside, outside, 0.75)
    assert rec["threshold"] == 0.6 and rec["reached"] and rec["answered"] == 3 and rec["precision"] == 0.75
    assert fallback.recommend(inside, outside, 1.0)["threshold"] == 0.9
    # a tie of a right and a wrong answer: the assistant answers both or neither
    tied = fallback.items([u("a", "a", 0.9), u("a", "a", 0.5), u("b", "a", 0.5)], [])
    assert fallback.recommend(*tied, 0.75)["threshold"] == 0.9
    none = fallback.recommend(fallback.items([u("a", "b", 0.9)], [])[0], [], 0.5)
    assert none == {"threshold": None, "answered": 0, "coverage": 0.0, "precision": None,
                    "out_of_scope_answered": 0, "reached": False}


def test_the_served_f1_labels_fallen_back_messages_fallback():
    inside, outside = fallback.items([u("a", "a", 0.9), u("a", "a", 0.2), u("out_of_scope", "a", 0.1)], [])
    f1, accuracy = fallback.served_f1(inside, outside, 0.3)
    assert accuracy == pytest.approx(2 / 3)  # a/a right, a -> fallback wrong, out_of_scope -> fallback right


def _section(cand, act):
    return {"target_precision": 0.9, "candidate": {"recommended": {"coverage": cand}},
            "active": {"recommended": {"coverage": act}} if act is not None else None}


def test_the_coverage_check():
    assert not fallback.check(_section(0.5, 0.6), 0.05).passed
    assert fallback.check(_section(0.56, 0.6), 0.05).passed and fallback.check(_section(0.7, 0.6), 0.0).passed
    off = fallback.check(_section(0.1, 0.6), None)
    assert off.passed and not off.enabled and off.detail.startswith("report only")
    assert not fallback.check(_section(0.5, None), 0.05).enabled  # no active model: not applicable
    decision = fallback.apply(Decision(True, [], "ok"), _section(0.5, 0.6), 0.05)
    assert not decision.promote and decision.reason.startswith("fallback_coverage:")
    assert fallback.apply(Decision(True, [], "ok"), None, 0.05).checks == []


def test_the_policy_keys(tmp_path):
    assert pol.DEFAULT.fallback == pol.Fallback(0.3, 0.9, None)
    p = pol.parse_policy({"fallback": {"target_precision": 0.95, "max_coverage_drop": 0.05}}, "p.yml")
    assert p.fallback == pol.Fallback(0.3, 0.95, 0.05)
    assert pol.parse_policy({"fallback_threshold": 0.5}, "p.yml").fallback.threshold == 0.5
    for raw, needle in (({"fallback": {"treshold": 0.4}}, "unknown key 'treshold' (did you mean 'threshold'?)"),
                        ({"fallback": {"target_precision": 0}}, "'fallback.target_precision' must be in (0, 1]"),
                        ({"fallback_threshold": 1.5}, "'fallback_threshold' must be in [0, 1]"),
                        ({"fallback_threshold": 0.4, "fallback": {"threshold": 0.4}}, "not both"),
                        ({"fallback": 0.3}, "'fallback' must be a mapping")):
        with pytest.raises(ConfigError) as info:
            pol.parse_policy(raw, "p.yml")
        assert needle in str(info.value) and "\n" not in str(info.value) and info.value.exit_code == 2
