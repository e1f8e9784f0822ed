"""The benchmark's training sets: seeded subsamples of a dataset and synthetic scale-ups beyond its size."""
from __future__ import annotations

import json
import random
from pathlib import Path

FILLERS_BEFORE = ["please ", "hey ", "ok ", "so ", "can you ", "i need you to ", "quick question "]
FILLERS_AFTER = [" please", " thanks", " now", " thank you", " for me", " ok"]


def read_examples(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["rasa_nlu_data"]["common_examples"]


def write_examples(path: Path, examples: list[dict]) -> Path:
    path.write_text(json.dumps({"rasa_nlu_data": {"common_examples": examples}}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def synthesise(examples: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` examples: the originals, then variants with entity values swapped and filler words added."""
    rng = random.Random(seed)
    values: dict[str, list[str]] = {}
    for e in examples:
        for ent in e.get("entities", []):
            values.setdefault(ent["entity"], []).append(e["text"][ent["start"]:ent["end"]])
    out = list(examples)
    while len(out) < n:
        src = rng.choice(examples)
        text, ents, cursor, pieces = src["text"], [], 0, []
        before = rng.choice(FILLERS_BEFORE) if rng.random() < 0.5 else ""
        pieces.append(before)
        offset = len(before)
        for ent in sorted(src.get("entities", []), key=lambda x: x["start"]):
            if ent["start"] < cursor:
                continue
            pieces.append(text[cursor:ent["start"]])
            offset += ent["start"] - cursor
            value = rng.choice(values[ent["entity"]])
            ents.append({"start": offset, "end": offset + len(value), "value": value, "entity": ent["entity"]})
            pieces.append(value)
            offset += len(value)
            cursor = ent["end"]
        pieces.append(text[cursor:])
        pieces.append(rng.choice(FILLERS_AFTER) if rng.random() < 0.5 else "")
        out.append({"text": "".join(pieces), "intent": src["intent"], "entities": ents})
    return out


def prepare_data(dataset: Path, work: Path, sizes: list[int]) -> dict[int, Path]:
    """Training files for ``sizes``: a seeded subsample up to the dataset's size, a synthetic scale-up beyond;
    each with the dataset's other sections as they are (HWU64: its 67 regex features), which the job trains
    on too (a team's file has them: per token they cost time and, stock, memory)."""
    doc = json.loads((dataset / "train.json").read_text(encoding="utf-8"))["rasa_nlu_data"]
    full = doc["common_examples"]
    sections = {k: v for k, v in doc.items() if k != "common_examples" and v}
    shuffled = full[:]
    random.Random(42).shuffle(shuffled)
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in sizes:
        rows = shuffled[:n] if n <= len(full) else synthesise(full, n)
        path = work / f"train_{n}.json"
        text = json.dumps({"rasa_nlu_data": {"common_examples": rows, **sections}}, ensure_ascii=False)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        files[n] = path
    return files
