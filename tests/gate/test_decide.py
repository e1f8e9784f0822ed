"""gate.decide on EvaluationResults built with the real ``evaluation.evaluate`` from chosen predictions.

Statistics-only cases: the paired counts are constructed exactly, so every expected number comes from
a reference (scipy's binomtest, sklearn's f1_score), not from the code under test.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from nlu_ci import gate
from nlu_ci.evaluation import EvaluationResult, evaluate
from nlu_ci.gate import registered
from nlu_ci.gate.policy import DEFAULT, Bootstrap, EntityF1, MustPass, Significance

INTENTS = ["greet", "goodbye", "affirm", "deny", "order_pizza"]

STRICT = replace(DEFAULT, min_improvement=0.0, non_inferiority_margin=None)  # the seed's rule, one line in policy.yml


def gold(n_per_intent: int = 40) -> list[str]:
    return [intent for _ in range(n_per_intent) for intent in INTENTS]


def result(labels: list[str], predicted: list[str | None], entities=None, predicted_entities=None) -> EvaluationResult:
    examples = [{"text": f"utterance {i}", "intent": g, "entities": (entities or {}).get(i, [])}
                for i, g in enumerate(labels)]
    preds = [{"text": f"utterance {i}", "intent": p, "confidence": 0.9, "intent_ranking": [],
              "entities": (predicted_entities or {}).get(i, [])} for i, p in enumerate(predicted)]
    return evaluate(examples, preds)


def wrong(label: str) -> str:
    return INTENTS[(INTENTS.index(label) + 1) % len(INTENTS)]


def paired(b: int, c: int, both_wrong: int = 10, n_per_intent: int = 40):
    """Active and candidate results with exactly ``b`` regressions and ``c`` fixes (spread over intents)."""
    labels = gold(n_per_intent)
    active, cand = list(labels), list(labels)
    i = 0
    for kind, count in (("b", b), ("c", c), ("both", both_wrong)):
        for _ in range(count):
            if kind in ("b", "both"):
                cand[i] = wrong(labels[i])
            if kind in ("c", "both"):
                active[i] = wrong(labels[i])
            i += 1
    return result(labels, cand), result(labels, active), labels, cand, active


def test_classic_rule_strictly_greater():
    cand, act, *_ = paired(b=2, c=3)
    assert cand.intent_f1 > act.intent_f1
    d = gate.decide(cand, act, STRICT)
    assert d.promote and d.check("min_improvement").passed
    d = gate.decide(act, act, STRICT)
    assert not d.promote and d.failed_checks[0].name == "min_improvement"
    assert "+0.0000" in d.reason and "needs > 0" in d.reason


def test_the_default_rule_is_non_inferiority_with_a_margin_of_0_01():
    same = gate.decide(paired(b=0, c=0)[0], paired(b=0, c=0)[1])  # equal F1 (one added example): promoted
    assert same.promote and same.check("non_inferiority").passed and "needs >= -0.0100" in same.check("non_inferiority").detail
    cand, act, *_ = paired(b=1, c=0)  # 1 regression in 200: -0.005 F1, not significant
    assert gate.decide(cand, act).promote
    cand, act, *_ = paired(b=4, c=0)  # -0.02: beyond the margin
    d = gate.decide(cand, act)
    assert not d.promote and d.failed_checks[0].name == "non_inferiority"


def test_min_improvement_threshold():
    cand, act, *_ = paired(b=0, c=6)
    gain = cand.intent_f1 - act.intent_f1
    assert gate.decide(cand, act, replace(STRICT, min_improvement=gain - 0.001)).promote
    d = gate.decide(cand, act, replace(STRICT, min_improvement=gain + 0.001))
    assert not d.promote and d.check("min_improvement").values["threshold"] == pytest.approx(gain + 0.001)


def test_non_inferiority_accepts_a_small_loss_only():
    cand, act, *_ = paired(b=4, c=1)
    loss = act.intent_f1 - cand.intent_f1
    assert loss > 0
    policy = replace(DEFAULT, min_improvement=None, non_inferiority_margin=loss + 0.005)
    d = gate.decide(cand, act, policy)
    assert d.promote and d.check("non_inferiority").passed
    d = gate.decide(cand, act, replace(policy, non_inferiority_margin=loss - 0.005))
    assert not d.promote and d.failed_checks[0].name == "non_inferiority"


@pytest.mark.parametrize("b,c", [(2, 3), (1, 9), (0, 12), (5, 5), (9, 1)])
def test_mcnemar_values_reported_against_scipy(b, c):
    cand, act, *_ = paired(b, c)
    check = gate.decide(cand, act).check("significance")
    v = check.values
    assert (v["b"], v["c"], v["n"]) == (b, c, len(cand.utterances))
    assert v["p_value"] == pytest.approx(binomtest(c, b + c, 0.5).pvalue, rel=1e-12)
    assert v["p_better"] == pytest.approx(binomtest(c, b + c, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert v["p_worse"] == pytest.approx(binomtest(b, b + c, 0.5, alternative="greater").pvalue, rel=1e-12)
    assert f"b={b}" in check.detail and f"c={c}" in check.detail


def test_tiny_noisy_gain_accepted_by_classic_rule_rejected_by_significance_better():
    cand, act, *_ = paired(b=2, c=3)
    better = replace(DEFAULT, significance=Significance(alpha=0.05, direction="better"))
    assert gate.decide(cand, act, STRICT).promote
    d = gate.decide(cand, act, better)
    assert not d.promote and [c.name for c in d.failed_checks] == ["significance"]
    assert "not significantly better" in d.reason and "p=0.5" in d.reason  # P(X >= 3 | n=5) = 0.5
    # a clear gain passes the same policy
    cand, act, *_ = paired(b=1, c=12)
    assert gate.decide(cand, act, better).promote


def test_not_worse_rejects_a_significant_regression_within_the_margin():
    cand, act, *_ = paired(b=12, c=2, n_per_intent=200)  # 1000 utterances: -1% accuracy
    policy = replace(DEFAULT, min_improvement=None, non_inferiority_margin=0.05, per_intent_max_drop=None)
    d = gate.decide(cand, act, policy)
    assert d.check("non_inferiority").passed
    sig = d.check("significance")
    assert not d.promote and not sig.passed and "significantly worse" in sig.detail
    assert sig.values["p_worse"] < 0.05
    # switched off: still reported, never blocks
    off = gate.decide(cand, act, replace(policy, significance=Significance(direction="off")))
    assert off.promote and not off.check("significance").enabled and off.check("significance").values["b"] == 12


def test_bootstrap_interval_reported_seeded_and_optionally_gating():
    cand, act, labels, cp, ap = paired(b=3, c=7)
    d1 = gate.decide(cand, act)
    ci = d1.check("bootstrap_ci")
    assert not ci.enabled and ci.values["low"] <= ci.values["observed"] <= ci.values["high"]
    assert ci.values["observed"] == pytest.approx(
        f1_score(labels, cp, average="weighted") - f1_score(labels, ap, average="weighted"), abs=1e-12)
    assert ci.values["observed"] == pytest.approx(cand.intent_f1 - act.intent_f1, abs=1e-12)
    assert gate.decide(cand, act).check("bootstrap_ci").values == ci.values  # same seed, same numbers
    other = gate.decide(cand, act, replace(DEFAULT, bootstrap=Bootstrap(seed=1))).check("bootstrap_ci")
    assert other.values["low"] != ci.values["low"] or other.values["high"] != ci.values["high"]
    assert ci.values["low"] < 0 < ci.values["high"]  # 4 net fixes of 200 is noise
    gated = gate.decide(cand, act, replace(STRICT, bootstrap=Bootstrap(gate=True)))  # lower bound must be > 0
    assert not gated.promote and gated.failed_checks[0].name == "bootstrap_ci" and "CI [" in gated.reason
    cand, act, *_ = paired(b=0, c=40)
    assert gate.decide(cand, act, replace(STRICT, bootstrap=Bootstrap(gate=True))).promote


def test_per_intent_guard_names_the_intent_and_skips_low_support_and_new_intents():
    labels = gold(10)
    act_pred = list(labels)
    cand_pred = [wrong(g) if g == "deny" and i < 30 else g for i, g in enumerate(labels)]  # deny: 6 of 10 wrong
    cand, act = result(labels, cand_pred), result(labels, act_pred)
    d = gate.decide(cand, act, replace(DEFAULT, min_improvement=None, significance=Significance(direction="off")))
    check = d.check("per_intent")
    assert not d.promote and not check.passed and "intent 'deny'" in check.detail
    # deny loses recall; order_pizza (where its errors went) loses precision
    assert [r["intent"] for r in check.values["failed"]] == ["deny", "order_pizza"]
    assert check.values["worst"]["intent"] == "deny" and "(+1 more)" in check.detail
    assert check.values["worst"]["drop"] == pytest.approx(1.0 - f1_score(labels, cand_pred, labels=["deny"],
                                                                                average=None)[0])
    # the same drop with support below min_support is reported, not failed
    d = gate.decide(cand, act, replace(DEFAULT, min_improvement=None, significance=Significance(direction="off"),
                                       min_support=11))
    assert d.check("per_intent").passed and "deny" in d.check("per_intent").values["low_support"]
    # a new intent the active model never predicts: reported, not failed
    labels = gold(10) + ["book_table"] * 8
    act_pred = gold(10) + ["greet"] * 8
    d = gate.decide(result(labels, labels), result(labels, act_pred))
    assert d.promote and d.check("per_intent").values["new_intents"] == ["book_table"]
    assert "never predicted by the active model (new?): book_table" in d.check("per_intent").detail


def entity(start: int, end: int, name: str, value: str) -> dict:
    return {"start": start, "end": end, "entity": name, "value": value}


def test_entity_floor_and_drop():
    labels = gold(4)
    ents = {i: [entity(0, 5, "size", "large")] for i in range(10)}
    half = {i: ents[i] for i in range(5)}
    act = result(labels, labels, ents, ents)
    cand = result(labels, labels, ents, half)
    cand_better = replace(cand, intent_f1=act.intent_f1 + 0.01)
    d = gate.decide(cand_better, act, has_entities=True)
    drop = d.check("entity_f1_drop")
    assert not d.promote and not drop.passed and drop.values["drop"] == pytest.approx(1 - 2 / 3)
    d = gate.decide(cand_better, None, replace(DEFAULT, entity_f1=EntityF1(min=0.8, max_drop=None)))
    assert not d.promote and d.check("entity_f1_min").values["candidate"] == pytest.approx(2 / 3)
    # a pipeline without entity extraction: both not applicable
    d = gate.decide(cand_better, act, has_entities=False)
    assert d.promote and not d.check("entity_f1_drop").enabled


def predictor(answers: dict[str, tuple[str, list]]):
    calls = []

    def run(texts):
        calls.append(list(texts))
        return [{"text": t, "intent": answers[t][0], "confidence": 1.0, "intent_ranking": [],
                 "entities": answers[t][1]} for t in texts]

    run.calls = calls
    return run


def test_must_pass_rejects_and_lists_failures_of_both_models():
    items = (MustPass("hi", "greet"), MustPass("a large pizza", "order_pizza", (("size", "large"),)))
    policy = replace(DEFAULT, must_pass=items)
    cand, act, *_ = paired(b=0, c=10)
    good = predictor({"hi": ("greet", []), "a large pizza": ("order_pizza", [entity(2, 7, "size", "large")])})
    no_entity = predictor({"hi": ("greet", []), "a large pizza": ("order_pizza", [])})
    wrong_intent = predictor({"hi": ("goodbye", []), "a large pizza": ("order_pizza", [entity(2, 7, "size", "large")])})
    d = gate.decide(cand, act, policy, predict_candidate=good, predict_active=wrong_intent)
    assert d.promote and good.calls == [["hi", "a large pizza"]]
    assert d.check("must_pass").values["active_failures"][0]["predicted_intent"] == "goodbye"
    d = gate.decide(cand, act, policy, predict_candidate=no_entity, predict_active=good)
    mp = d.check("must_pass")
    assert not d.promote and mp.values["candidate_failures"][0]["text"] == "a large pizza"
    assert mp.values["active_failures"] == [] and "entities none (expected size=large)" in mp.detail
    # at bootstrap (no active model) must-pass still applies
    d = gate.decide(cand, None, policy, predict_candidate=wrong_intent)
    assert not d.promote and "'hi' -> goodbye (expected greet)" in d.reason
    # configured but nothing to run the candidate with: fail, do not silently pass
    assert not gate.decide(cand, act, policy).promote


def test_bootstrap_run_applies_the_floor():
    cand, _, *_ = paired(b=30, c=0)
    assert gate.decide(cand, None).promote
    d = gate.decide(cand, None, DEFAULT.with_check_value("min_intent_f1", 0.95))
    assert not d.promote and d.failed_checks[0].name == "min_intent_f1"
    assert {c.name for c in d.checks if not c.enabled} >= {"non_inferiority", "significance", "bootstrap_ci",
                                                             "per_intent"}


def test_platform_results_without_utterances():
    cand, act, *_ = paired(b=1, c=6)
    platform = replace(act, utterances=[], source="platform")
    d = gate.decide(cand, platform)
    assert d.promote
    for name in ("significance", "bootstrap_ci"):
        assert d.check(name).passed and not d.check(name).enabled
        assert "active evaluated by platform" in d.check(name).detail
    better = gate.decide(cand, platform, replace(DEFAULT, significance=Significance(direction="better")))
    assert not better.promote and "direction 'better' needs paired results" in better.reason
    gated = gate.decide(cand, platform, replace(DEFAULT, bootstrap=Bootstrap(gate=True)))
    assert not gated.promote and "bootstrap_ci" in gated.reason


def test_different_test_sets_are_not_paired():
    cand, act, *_ = paired(b=1, c=6)
    shorter = replace(act, utterances=act.utterances[:-1])
    d = gate.decide(cand, shorter, replace(DEFAULT, significance=Significance(direction="better")))
    assert not d.promote and "different test sets (200 vs 199 utterances)" in d.reason


def test_decision_serialises_and_formats_as_a_table():
    cand, act, *_ = paired(b=12, c=1)
    d = gate.decide(cand, act)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["policy"] == "built-in" and data["verdict"] == "keep the active model"
    assert data["promote"] is False and {c["name"] for c in data["checks"]} == {
        "non_inferiority", "significance", "bootstrap_ci", "per_intent", "entity_f1_min",
        "entity_f1_drop", "must_pass"} | {module.KEY for module in registered.CHECKS}
    assert "min_intent_f1" in {module.KEY for module in registered.CHECKS}
    for c in data["checks"]:
        assert set(c) == {"name", "passed", "detail", "values", "enabled"} and "\n" not in c["detail"]
    table = gate.format_checks(d).splitlines()
    assert table[0].split() == ["check", "result", "detail"]
    assert any(line.startswith("non_inferiority") and " FAIL " in line for line in table)
    assert any(line.startswith("bootstrap_ci") and " info " in line for line in table)
    assert table[-1].startswith("decision: keep the active model")
    first = gate.decide(act, None, DEFAULT.with_check_value("min_intent_f1", 0.99))  # nothing active: nothing to keep
    assert not first.promote and first.verdict == "do not promote (no active model to keep)"
    assert gate.format_checks(first).splitlines()[-1].startswith("decision: do not promote (no active model to keep)")


def test_a_rollback_hold_rejects_whatever_the_other_checks_say():
    cand, act, *_ = paired(b=0, c=12)
    d = gate.decide(cand, act)
    assert d.promote
    held = gate.with_hold(d, "data fingerprint sha256:abc is held", {"model": "model_x"})
    assert not held.promote and held.reason == "rejected by rollback_hold: data fingerprint sha256:abc is held"
    assert [c.name for c in held.failed_checks] == ["rollback_hold"] and held.check("rollback_hold").values["model"] == "model_x"
    free = gate.with_hold(d, None)
    assert free.promote and not free.check("rollback_hold").enabled and free.reason == d.reason


def test_details_stay_one_short_line_with_many_intents():
    labels = [f"intent_{i:02d}" for i in range(40) for _ in range(3)]
    d = gate.decide(result(labels, labels), result(labels, labels[1:] + labels[:1]))
    check = d.check("per_intent")
    assert len(check.values["low_support"]) == 40  # all in the values
    assert "intent_04 (+35 more)" in check.detail and len(check.detail) < 200
    assert all("\n" not in c.detail and len(c.detail) < 300 for c in d.checks)
