"""The run report's JSON keys are the ones docs/architecture.md lists ("Run report"): a real `nlu-ci run` (a
process, on the sample data) has every key the list says a run always has, and no key the list does not name."""
from __future__ import annotations

import re
from pathlib import Path

from support.data import FAST_CONFIG, SAMPLE, cli_env, run_cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented() -> tuple[dict[str, set[str] | None], set[str]]:
    """({top-level key: its sub-keys or None}, the keys on lines that say "when")."""
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("### Run report"):]
    block = block[block.index("```\n") + 4:]
    block = block[:block.index("```")]
    entries: list[str] = []
    for line in block.splitlines():
        if line.startswith(" ") and entries:
            entries[-1] += " " + line.strip()
        elif line.strip():
            entries.append(line)
    keys: dict[str, set[str] | None] = {}
    conditional: set[str] = set()
    for entry in entries:
        head = re.split(r" {2,}|\s?[{\[]", re.sub(r"\s*\([^()]*\)", "", entry), maxsplit=1)[0]
        names = [n.strip() for n in head.split(",")]
        if "{" in entry and len(names) == 1:
            inner = entry[entry.index("{") + 1:]
            depth, out = 1, ""
            for ch in inner:  # the first level of {...}, nested braces and lists dropped
                depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(ch, 0)
                if depth == 0:
                    break
                if depth == 1 and ch not in "{}[]":
                    out += ch
            subs = {re.split(r"[:\s]", s.strip())[0] for s in out.split(",") if s.strip()}
        else:
            subs = None
        for name in names:
            keys[name] = subs
            if "(when " in entry:
                conditional.add(name)
    return keys, conditional


def test_the_documented_list_parses():
    keys, conditional = documented()
    assert {"outcome", "project", "exit_code", "data", "candidate", "decision", "review_page"} <= set(keys)
    assert keys["decision"] == {"promote", "reason", "verdict", "checks", "policy"}
    assert {"notification", "kubernetes", "check"} <= conditional and "data" not in conditional


def test_a_real_runs_keys_are_the_documented_ones(tmp_path):
    (tmp_path / "fast.yml").write_text(FAST_CONFIG)
    env = cli_env(tmp_path / "models", NLU_CI_CONFIG=str(tmp_path / "fast.yml"))
    run = run_cli(["run", "--data", str(SAMPLE), "--json"], env)
    assert run.code == 0 and run.json["outcome"] == "promoted", run.output
    report = run.json
    keys, conditional = documented()
    assert set(report) - set(keys) == set(), "keys the documentation does not list"
    always = set(keys) - conditional - {"active"}  # active: null on the first run, still a key
    assert always - set(report) == set(), "documented keys a run does not have"
    assert "active" in report
    assert set(report["data"]) == keys["data"]
    assert set(report["candidate"]) == keys["candidate"]
    assert set(report["decision"]) <= keys["decision"] and {"promote", "reason", "checks"} <= set(report["decision"])
    assert {k for c in report["decision"]["checks"] for k in c} == {"name", "passed", "detail", "values", "enabled"}
    assert set(report["metrics"]) == keys["metrics"] and set(report["review_page"]) == keys["review_page"]


def test_a_run_with_relabelled_examples_has_the_documented_data_diff_keys(tmp_path):
    """The second run relabels one held-out and one training example of the sample and names other relabels with
    --accept-relabels: every documented key of data_diff is there, none else."""
    from support.data import held_out, load_sample, write_data

    (tmp_path / "fast.yml").write_text(FAST_CONFIG)
    env = cli_env(tmp_path / "models", NLU_CI_CONFIG=str(tmp_path / "fast.yml"))
    assert run_cli(["run", "--data", str(SAMPLE), "--json"], env).json["outcome"] == "promoted"
    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    test_texts = {e["text"] for e in held_out(examples)}
    intents = sorted({e["intent"] for e in examples})
    held = next(i for i, e in enumerate(examples) if e["text"] in test_texts)
    trained = next(i for i, e in enumerate(examples) if e["text"] not in test_texts)
    for i in (held, trained):
        examples[i] = dict(examples[i], intent=next(x for x in intents if x != examples[i]["intent"]), entities=[])
    data = write_data(tmp_path / "relabelled.json", examples)
    run = run_cli(["run", "--data", str(data), "--json", "--dry-run", "--accept-relabels", "sha256:" + "0" * 12], env)
    assert run.code == 0, run.output
    keys, conditional = documented()
    assert "data_diff" in conditional
    diff = run.json["data_diff"]
    assert diff["relabelled"] == 2 and diff["held_out_relabelled"] == 1, diff
    assert set(diff) == keys["data_diff"]
    assert set(diff["relabelled_examples"][0]) == {"text", "old_intent", "new_intent", "relabelled", "held_out"}
    assert set(diff["held_out"]) == {"examples", "labels", "candidate", "active"}
