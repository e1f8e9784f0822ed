"""The pull-request check's pure parts: the data diff (added, removed, relabelled by normalised text) and the
base branch's split (the held-out set is the base's, with the base's labels; nothing of it is trained on;
the branch's new examples held out by the same hash are scored apart)."""
from __future__ import annotations

import types

from nlu_ci.check import base_split, diff
from nlu_ci.data import dataset
from support.data import load_sample, write_data


def test_diff_flags_relabelled_examples_by_normalised_text():
    ref = [{"text": "Hello there", "intent": "greet"}, {"text": "bye", "intent": "goodbye"},
           {"text": "a pizza", "intent": "order"}]
    branch = [{"text": "hello   THERE", "intent": "goodbye"}, {"text": "a pizza", "intent": "order"},
              {"text": "new one", "intent": "order"}]
    d = diff.diff(ref, branch, "the base")
    assert (d["added"], d["removed"], d["relabelled"]) == (1, 1, 1)
    assert d["relabelled_examples"] == [{"text": "hello   THERE", "old_intent": "greet", "new_intent": "goodbye",
                                         "relabelled": True}]
    assert d["added_examples"] == [{"text": "new one", "intent": "order"}]
    assert d["removed_examples"] == [{"text": "bye", "intent": "goodbye"}]
    assert diff.diff(ref, branch, "x", listed=0)["relabelled_examples"] == []


def test_base_split_judges_with_the_base_labels_and_scores_new_examples_apart(tmp_path):
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    base_path = write_data(tmp_path / "base.json", examples[:-40])
    base_test = dataset.hash_split(dataset.load_training_data(base_path), 0.2, "nlu-ci").test
    flipped = {e["text"] for e in base_test[:5]}
    branch = [dict(e, intent="deny" if e["text"] in flipped else e["intent"]) for e in examples]
    data = dataset.load_training_data(write_data(tmp_path / "branch.json", branch))
    settings = types.SimpleNamespace(base_data=base_path, max_repair_share=0.01, test_fraction=0.2,
                                     split_salt="nlu-ci")
    split = base_split.base_split(settings, data, tmp_path / "branch.json")
    assert split.test == base_test  # the base's held-out examples, the base's labels
    trained = {m.text for m in split.train.training_examples}
    assert not trained & {e["text"] for e in base_test}  # none of them trained on, relabelled or not
    new = {e["text"] for e in examples[-40:]}
    apart = {e["text"] for e in split.apart}
    assert apart and apart <= new and not apart & trained
    assert new - apart <= trained
    assert split.params["test_from"] == "base" and split.params["method"] == "hash"
    report = {"data": {}}
    base_split.score_apart(dataset.Split(None, [], {}), None, None, report)
    assert report == {"data": {}}  # no base: nothing added
