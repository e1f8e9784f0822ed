"""Data growth steps cut from HWU64 (CC BY 4.0: X. Liu, A. Eshghi, P. Swietojanski, V. Rieser, "Benchmarking
Natural Language Understanding Services for building Conversational Agents", IWSDS 2019; data from
xliuhw/NLU-Evaluation-Data; see /work/shared/datasets/hwu64/README.md), for the gate's default-rule test and
``tests/gate/measure_default_rule.py``.

Deterministic for a seed: ``base`` 1,400 examples of 14 intents (100 each); ``growth`` the same plus 100 new
examples (60 more of the 14 intents, 40 of a 15th, new intent) = 1,500; ``more`` 1,500 without a new intent;
``plus1`` the base and one example; ``noisy`` the growth data with 40 % of
the labels of 4 intents shuffled among those 4 (on both sides of the split, as a branch that merged them would).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

HWU64 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "hwu64" / "train.json"
if not HWU64.is_file():  # a worktree under /work/wt/<name>: the datasets live at /work/shared
    HWU64 = Path("/work/shared/datasets/hwu64/train.json")
INTENTS, PER_INTENT, MORE, NEW_INTENT_EXAMPLES = 14, 100, 60, 40
NOISY_INTENTS, NOISE_SHARE = 4, 0.4


def available() -> bool:
    return HWU64.is_file()


def _examples() -> dict[str, list[dict]]:
    data = json.loads(HWU64.read_text(encoding="utf-8"))["rasa_nlu_data"]["common_examples"]
    by_intent: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for e in data:
        if e["text"] in seen:
            continue
        seen.add(e["text"])
        by_intent.setdefault(e["intent"], []).append(
            {"text": e["text"], "intent": e["intent"], "entities": e.get("entities") or []})
    return by_intent


def steps(seed: int = 0) -> dict[str, list[dict]]:
    """``{"base": 1,400 examples, "growth": 1,500 (one new intent), "more": 1,500 (no new intent),
    "plus1": 1,401 (one added example), "noisy": 1,500}``."""
    rng = random.Random(seed)
    by_intent = _examples()
    big = sorted(i for i, ex in by_intent.items() if len(ex) >= PER_INTENT + MORE)
    chosen = rng.sample(big, INTENTS + 1)
    old, new = chosen[:INTENTS], chosen[INTENTS]
    pools = {i: rng.sample(by_intent[i], len(by_intent[i])) for i in chosen}
    base = [e for i in old for e in pools[i][:PER_INTENT]]
    extra = [pools[old[j % INTENTS]][PER_INTENT + j // INTENTS] for j in range(MORE)]
    growth = base + extra + pools[new][:NEW_INTENT_EXAMPLES]
    more = base + extra + [pools[old[j % INTENTS]][PER_INTENT + MORE // INTENTS + 1 + j // INTENTS]
                           for j in range(NEW_INTENT_EXAMPLES)]
    noisy = [dict(e) for e in growth]
    noisy_intents = set(rng.sample(old, NOISY_INTENTS))
    idx = [k for k, e in enumerate(noisy) if e["intent"] in noisy_intents]
    picked = rng.sample(idx, int(len(idx) * NOISE_SHARE))
    labels = sorted(noisy_intents)
    for k in picked:
        others = [label for label in labels if label != noisy[k]["intent"]]
        noisy[k] = dict(noisy[k], intent=rng.choice(others))
    return {"base": base, "growth": growth, "more": more, "plus1": base + extra[:1], "noisy": noisy}


def write(path: Path, examples: list[dict]) -> Path:
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}, indent=1), encoding="utf-8")
    return path
