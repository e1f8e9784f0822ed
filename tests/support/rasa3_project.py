"""A small Rasa 3 project cut from HWU64 (CC BY 4.0, see tests/support/growth.py) for the day-in-production test
(tests/k8s/test_day_in_production.py): ``data/nlu.yml`` (entities as ``[value](entity)`` markup), ``data/stories.yml``,
``data/rules.yml``, ``domain.yml``, ``config.yml``, ``tests/test_stories.yml`` -- the layout ``rasa init`` makes, so
the job reads the NLU examples out of a folder that also holds stories and rules.

Deterministic: ``day_steps()`` gives ``base`` (6 intents x 60), ``growth`` (the base, 15 more of each intent and a
new intent ``cooking_recipe`` with 60) and ``relabelled(growth)`` (half of ``iot_coffee``'s examples labelled
``takeaway_order``, on both sides of the split, as a branch that merged the two would)."""
from __future__ import annotations

import json
import random

from .growth import HWU64

INTENTS = ("weather_query", "alarm_set", "play_music", "iot_coffee", "takeaway_order", "transport_ticket")
NEW_INTENT = "cooking_recipe"
PER_INTENT, MORE, NEW_EXAMPLES = 60, 15, 60
RELABEL_FROM, RELABEL_TO = "iot_coffee", "takeaway_order"


def _pools(seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    pools: dict[str, list[dict]] = {}
    for e in json.loads(HWU64.read_text(encoding="utf-8"))["rasa_nlu_data"]["common_examples"]:
        text = " ".join(e["text"].split())
        if e["intent"] in (*INTENTS, NEW_INTENT) and text.lower() not in seen and "[" not in text and "]" not in text:
            seen.add(text.lower())
            pools.setdefault(e["intent"], []).append(dict(e, text=text) if text == e["text"] else e)
    return {i: rng.sample(p, len(p)) for i, p in sorted(pools.items())}


def day_steps(seed: int = 0) -> dict[str, list[dict]]:
    pools = _pools(seed)
    base = [e for i in INTENTS for e in pools[i][:PER_INTENT]]
    growth = base + [e for i in INTENTS for e in pools[i][PER_INTENT:PER_INTENT + MORE]] + \
        pools[NEW_INTENT][:NEW_EXAMPLES]
    return {"base": base, "growth": growth}


def relabelled(examples: list[dict]) -> tuple[list[dict], set[str]]:
    """Half of RELABEL_FROM's examples (every second) labelled RELABEL_TO; the relabelled texts."""
    own = [k for k, e in enumerate(examples) if e["intent"] == RELABEL_FROM][::2]
    out = [dict(e, intent=RELABEL_TO) if k in own else e for k, e in enumerate(examples)]
    return out, {examples[k]["text"] for k in own}


def _markup(e: dict) -> str:
    text, out, at = e["text"], [], 0
    for ent in sorted(e.get("entities") or [], key=lambda x: x["start"]):
        if ent["start"] < at or ent["end"] > len(text) or ent["start"] >= ent["end"]:
            continue  # an overlapping or broken span: the example without it
        out += [text[at:ent["start"]], f"[{text[ent['start']:ent['end']]}]({ent['entity']})"]
        at = ent["end"]
    return "".join(out + [text[at:]])


def _quoted(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def nlu_yml(examples: list[dict]) -> str:
    lines = ['version: "3.1"', "nlu:"]
    for intent in dict.fromkeys(e["intent"] for e in examples):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {_markup(e)}" for e in examples if e["intent"] == intent]
    return "\n".join(lines) + "\n"


def project_files(examples: list[dict]) -> dict[str, str]:
    """The repository's files for these examples (the relative path -> text)."""
    intents = list(dict.fromkeys(e["intent"] for e in examples))
    entities = sorted({ent["entity"] for e in examples for ent in e.get("entities") or []})
    domain = ['version: "3.1"', "intents:", *[f"  - {i}" for i in intents], "entities:",
              *[f"  - {x}" for x in entities], "responses:",
              *[f"  utter_{i}:\n    - text: {_quoted('On it: ' + i.replace('_', ' '))}" for i in intents],
              "session_config:", "  session_expiration_time: 60", "  carry_over_slots_to_new_session: true"]
    stories = ['version: "3.1"', "stories:"]
    for i in intents:
        stories += [f"- story: {i}", "  steps:", f"  - intent: {i}", f"  - action: utter_{i}"]
    first = next(e for e in examples if e["intent"] == intents[0])
    return {
        "data/nlu.yml": nlu_yml(examples),
        "data/stories.yml": "\n".join(stories) + "\n",
        "data/rules.yml": 'version: "3.1"\nrules:\n- rule: answer the first intent\n  steps:\n'
                          f"  - intent: {intents[0]}\n  - action: utter_{intents[0]}\n",
        "domain.yml": "\n".join(domain) + "\n",
        "config.yml": 'recipe: default.v1\nlanguage: en\nassistant_id: day-in-production\n'
                      "pipeline:\n- name: WhitespaceTokenizer\n- name: DIETClassifier\n  epochs: 100\n"
                      "policies:\n- name: RulePolicy\n",
        "tests/test_stories.yml": 'version: "3.1"\nstories:\n- story: the first intent\n  steps:\n'
                                  f"  - user: |\n      {_markup(first)}\n    intent: {intents[0]}\n"
                                  f"  - action: utter_{intents[0]}\n",
    }
