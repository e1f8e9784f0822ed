"""The gate end to end on real rasa_nlu models trained from data/sample/nlu.json variants.

One stable hash split of the full sample data gives the test set every model is evaluated on (as a
nightly run does); each scenario changes only the TRAIN side, then ``gate.decide`` (and ``compare``)
judge the candidate against the active model with a policy loaded from a real policy.yml.
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
import yaml
from scipy.stats import binomtest

from nlu_ci import compare as cmp
from nlu_ci import gate
from nlu_ci.data import dataset
from nlu_ci.gate.policy import load_policy
from support.data import FAST_CONFIG, load_sample, shuffled_train_labels, write_data

pytestmark = pytest.mark.slow
FRACTION, SALT = 0.2, "nlu-ci"


class Lab:
    """Trains models on variants of the sample data and evaluates them on one fixed test split."""

    def __init__(self, root: Path):
        self.root = root
        self.config = root / "config.yml"
        self.config.write_text(FAST_CONFIG)
        self.examples = load_sample()["rasa_nlu_data"]["common_examples"]
        full = dataset.load_training_data(write_data(root / "full.json", self.examples))
        self.test = dataset.hash_split(full, FRACTION, SALT).test
        self.test_file = write_data(root / "test.json", self.test)
        held_out = {e["text"] for e in self.test}
        self.train = [e for e in self.examples if e["text"] not in held_out]
        self.models: dict[str, cmp.LoadedModel] = {}
        self.results = {}

    def model(self, name: str, examples: list[dict]):
        from nlu_ci.engine.training import train

        if name not in self.models:
            data = dataset.load_training_data(write_data(self.root / f"{name}.json", examples))
            path = train(self.config, data, self.root / "models" / name)
            self.models[name] = cmp.LoadedModel(path)
            self.results[name] = self.models[name].evaluate(self.test)
        return self.results[name]

    def decide(self, candidate: str, active: str, policy) -> gate.Decision:
        return gate.decide(self.results[candidate], self.results[active], policy,
                           predict_candidate=self.models[candidate].predict,
                           predict_active=self.models[active].predict,
                           has_entities=cmp.extracts_entities(self.models[candidate].interpreter))


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    lab = Lab(tmp_path_factory.mktemp("gate-lab"))
    lab.model("full", lab.train)
    return lab


def policy_file(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yml"
    p.write_text(text)
    return p


def test_more_data_promotes_under_the_default_and_shipped_policies(lab):
    rng = random.Random(0)
    few = [e for intent in sorted({e["intent"] for e in lab.train})
           for e in rng.sample([x for x in lab.train if x["intent"] == intent], 6)]
    lab.model("few", few)
    root = Path(__file__).parents[2]
    for policy in (None, load_policy(root / "policy.yml"), load_policy(root / "data" / "sample" / "policy.yml")):
        d = lab.decide("full", "few", policy)
        assert d.promote, gate.format_checks(d)
        sig = d.check("significance").values
        assert sig["c"] > sig["b"] and lab.results["full"].intent_f1 > lab.results["few"].intent_f1
        ci = d.check("bootstrap_ci").values
        assert 0 < ci["low"] <= ci["observed"] <= ci["high"]
    assert d.check("must_pass").enabled and d.check("must_pass").passed  # the sample's must_pass.yml


def test_thirty_percent_shuffled_labels_are_rejected_with_the_reason_named(lab):
    shuffled = shuffled_train_labels(lab.examples, 0.3, seed=0, fraction=FRACTION, salt=SALT)
    held_out = {e["text"] for e in lab.test}
    lab.model("shuffled", [e for e in shuffled if e["text"] not in held_out])
    d = lab.decide("shuffled", "full", None)
    assert not d.promote
    assert lab.results["shuffled"].intent_f1 < lab.results["full"].intent_f1
    failed = [c.name for c in d.failed_checks]
    assert failed[0] == "non_inferiority" and d.reason.startswith("rejected by non_inferiority")
    assert f"{lab.results['shuffled'].intent_f1:.4f} vs active {lab.results['full'].intent_f1:.4f}" in d.reason


def test_removing_most_examples_of_one_intent_is_caught_by_the_per_intent_guard(lab, tmp_path):
    intent = "thank_you"
    kept = [e for e in lab.train if e["intent"] == intent][:2]
    lab.model("few_thanks", [e for e in lab.train if e["intent"] != intent] + kept)
    support = Counter(e["intent"] for e in lab.test)[intent]
    assert support >= 5
    # an aggregate rule lenient enough to accept the candidate: only the per-intent guard stands in the way
    policy = load_policy(policy_file(tmp_path, "non_inferiority_margin: 0.15\nsignificance: off\n"
                                               "per_intent_max_drop: 0.15\nmin_support: 5\n"))
    d = lab.decide("few_thanks", "full", policy)
    assert [c.name for c in d.failed_checks] == ["per_intent"], gate.format_checks(d)
    check = d.check("per_intent")
    assert check.values["worst"]["intent"] == intent and f"intent '{intent}'" in d.reason
    before = lab.results["full"].per_intent[intent]["f1"]
    after = lab.results["few_thanks"].per_intent[intent]["f1"]
    assert check.values["worst"]["drop"] == pytest.approx(before - after) and before - after > 0.15


def test_a_must_pass_utterance_the_candidate_misses_rejects_it(lab, tmp_path):
    intent = "thank_you"
    kept = [e for e in lab.train if e["intent"] == intent][:2]
    lab.model("few_thanks", [e for e in lab.train if e["intent"] != intent] + kept)
    phrases = [e["text"] for e in lab.test if e["intent"] == intent]  # our must-not-break thank-yous
    (tmp_path / "must_pass.yml").write_text(yaml.safe_dump([{"text": t, "intent": intent} for t in phrases]))
    policy = load_policy(policy_file(tmp_path, "min_improvement: off\nsignificance: off\nper_intent_max_drop: off\n"
                                               "entity_f1: off\nmust_pass: must_pass.yml\n"))
    d = lab.decide("few_thanks", "full", policy)
    assert not d.promote and [c.name for c in d.failed_checks] == ["must_pass"]
    values = d.check("must_pass").values
    missed = values["candidate_failures"]
    assert missed and all(f["expected_intent"] == intent and f["predicted_intent"] != intent for f in missed)
    # the failures are real predictions of the candidate model, and the active model's are listed too
    predicted = lab.models["few_thanks"].predict([f["text"] for f in missed])
    assert [p["intent"] for p in predicted] == [f["predicted_intent"] for f in missed]
    assert len(values["active_failures"]) < len(missed)
    assert f"candidate misses {len(missed)} of {len(phrases)}" in d.reason
    # with no active model (bootstrap) must-pass still applies
    assert not gate.decide(lab.results["few_thanks"], None, policy,
                           predict_candidate=lab.models["few_thanks"].predict).promote


def test_tiny_noisy_gain_accepted_by_classic_rule_rejected_by_significance_better(lab, tmp_path):
    better = load_policy(policy_file(tmp_path, "significance: {alpha: 0.05, direction: better}\n"))
    for seed in range(6):  # the active model: today's train side minus a random 10%
        rng = random.Random(seed)
        result = lab.model(f"minus10_{seed}", [e for e in lab.train if rng.random() > 0.1])
        gain = lab.results["full"].intent_f1 - result.intent_f1
        if gain > 0:
            break
    else:
        pytest.fail("no 10%-smaller training set gave a lower F1")
    classic = lab.decide("full", f"minus10_{seed}", None)
    assert classic.promote, gate.format_checks(classic)
    d = lab.decide("full", f"minus10_{seed}", better)
    assert not d.promote and [c.name for c in d.failed_checks] == ["significance"]
    v = d.check("significance").values
    assert v["c"] - v["b"] <= 4  # a handful of utterances: noise
    assert v["p_better"] == pytest.approx(binomtest(v["c"], v["b"] + v["c"], 0.5, alternative="greater").pvalue)
    assert v["p_better"] >= 0.05 and "not significantly better" in d.reason


def test_compare_runs_the_same_checks_offline(lab):
    lab.model("few_thanks", [e for e in lab.train if e["intent"] != "thank_you"]
              + [e for e in lab.train if e["intent"] == "thank_you"][:2])
    a, b = lab.models["full"].path, lab.models["few_thanks"].path
    decision, result_a, result_b = cmp.compare(a, b, lab.test_file, None)
    assert result_a.intent_f1 == pytest.approx(lab.results["full"].intent_f1)
    assert result_b.intent_f1 == pytest.approx(lab.results["few_thanks"].intent_f1)
    assert decision.to_dict() == lab.decide("few_thanks", "full", None).to_dict()
    assert not decision.promote
    reverse, *_ = cmp.compare(b, a, lab.test_file, None)
    assert reverse.promote
    text = cmp.format_text(decision, result_a, result_b, a, b, lab.test_file)
    assert "B would NOT be promoted" in text and "per_intent" in text
    assert cmp.summary(decision, result_a, result_b, a, b, lab.test_file)["test_examples"] == len(lab.test)


def test_sample_must_pass_holds_for_a_model_of_the_shipped_pipeline(lab, tmp_path):
    """data/sample/policy.yml + must_pass.yml are examples people copy: a model trained with nlu_config.yml on the
    sample data's train side gets every sample must-pass utterance right (intents and entities)."""
    from nlu_ci.engine.training import train

    root = Path(__file__).parents[2]
    data = dataset.load_training_data(write_data(tmp_path / "train.json", lab.train))
    model = cmp.LoadedModel(train(root / "nlu_config.yml", data, tmp_path / "shipped"))
    policy = load_policy(root / "data" / "sample" / "policy.yml")
    assert any(item.entities for item in policy.must_pass)
    assert gate.must_pass_failures(policy.must_pass, model.predict([i.text for i in policy.must_pass])) == []
