"""K stratified folds of the TRAINING side (never the held-out test set), the same every time.

Each intent's examples are ordered by SHA-256 of the split salt, ``:cv:`` and the example's content (text,
intent, entities: ``engine.training._example_key``'s key) and dealt round-robin into K folds; the dealing
goes on where the previous intent (in sorted order) stopped, so the folds differ in size by at most one.
Nothing depends on the order the examples arrive in, on the number of workers or on the machine: a fold
computed by a forked process, by a pod of the Indexed Job or by the job itself is the same fold.
Examples without an intent are never held out (they always train)."""
from __future__ import annotations

import hashlib
from collections import defaultdict

from nlu_ci.data.dataset import _subset, example_dict
from nlu_ci.errors import DataError

SALT_SUFFIX = ":cv:"


def _key(message, salt: str) -> str:
    from nlu_ci.engine.training import _example_key

    return hashlib.sha256(f"{salt}{SALT_SUFFIX}{_example_key(message)}".encode()).hexdigest()


def check_k(k: int, data, where: str = "training data") -> None:
    """K folds need K >= 2 and at least K training examples of every intent (one in each fold)."""
    if k < 2:
        raise DataError(f"--cv-folds / NLU_CI_CV_FOLDS: {k} folds; cross-validation needs at least 2")
    counts: dict[str, int] = defaultdict(int)
    for message in data.training_examples:
        if message.get("intent"):
            counts[message.get("intent")] += 1
    rarest = min(sorted(counts), key=lambda i: counts[i], default=None)
    if rarest is not None and counts[rarest] < k:
        raise DataError(f"--cv-folds {k}: {where}: intent '{rarest}' has only {counts[rarest]} training examples, "
                        f"one per fold needs at most {counts[rarest]} folds")


def assign(data, k: int, salt: str) -> list[int]:
    """The fold (0..k-1) of each of ``data.training_examples`` in their order; -1: never held out."""
    check_k(k, data)
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, message in enumerate(data.training_examples):
        if message.get("intent"):
            by_intent[message.get("intent")].append(i)
    fold = [-1] * len(data.training_examples)
    dealt = 0
    for intent in sorted(by_intent):
        ordered = sorted(by_intent[intent], key=lambda i: _key(data.training_examples[i], salt))
        for i in ordered:
            fold[i] = dealt % k
            dealt += 1
    return fold


def split(data, k: int, salt: str, fold: int):
    """(training TrainingData without fold ``fold``, that fold's examples as test dicts)."""
    folds = assign(data, k, salt)
    train = [m for m, f in zip(data.training_examples, folds, strict=True) if f != fold]
    held = [example_dict(m) for m, f in zip(data.training_examples, folds, strict=True) if f == fold]
    return _subset(data, train), held
