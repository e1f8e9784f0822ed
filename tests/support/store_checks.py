"""The store's promises after anything, a SIGKILL included (used by every crash and fault test)."""
from __future__ import annotations

import json
import os
from pathlib import Path

# the stages whose crash safety the store guarantees (docs/reliability.md): a crash test must land kills there
GUARANTEED_STAGES = ("store", "promote", "retention")


def check_history(path: Path, torn: frozenset[int] = frozenset()) -> int | None:
    """Every history line is a whole JSON object, except possibly the last one (a write a crash tore) and
    the lines in ``torn`` (0-based: lines an earlier check found torn at the end, since closed by the next
    append starting a new line). Returns the index of a torn last line, or None. The reader never raises."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    lines = text.split("\n")
    last_torn = not text.endswith("\n") and text != ""
    whole = lines[:-1]  # split leaves "" after a final newline, or the unterminated last line
    for n, line in enumerate(whole):
        if n in torn:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path}:{n + 1}: a history line that is not JSON and not the last one: "
                                 f"{line[:80]!r}") from None
        assert isinstance(entry, dict), f"{path}:{n + 1}: not a JSON object"
    return len(whole) if last_torn else None


def check_store_invariants(models: Path, project: str = "default", load: bool = True,
                           damaged: set[str] = frozenset(), torn: frozenset[int] = frozenset()) -> str | None:
    """ACTIVE names an intact model (every file matches the sha256 in nlu_ci.json) that rasa_nlu loads and
    predicts with; PREVIOUS (if any) names an intact model; no folder under a model name is a partial one
    (except ``damaged``: folders a test broke on purpose); only the last history line may be torn
    (``check_history``); last_report.json (if any) is JSON. Returns the active model's name."""
    from nlu_ci.registry.store import ModelStore

    store = ModelStore(models, project)
    active = store.active_name()
    if active is not None:
        assert store.verify(active) == [], f"ACTIVE {active!r}: {store.verify(active)} ({sorted(os.listdir(store.dir))})"
        if load:
            from nlu_ci.engine.predict import load_model, predict

            prediction = predict(load_model(store.dir / active), ["hello there"])[0]
            assert prediction["intent"], prediction
    previous = store.previous_name()
    if previous is not None:
        assert store.verify(previous) == [], f"PREVIOUS {previous!r}: {store.verify(previous)}"
    for p in store.dir.iterdir() if store.dir.is_dir() else []:
        if p.name.startswith("model_") and p.name not in damaged:
            assert (p / "nlu_ci.json").is_file(), f"partial model folder under a model name: {p}"
    check_history(store.dir / "history.jsonl", torn)
    store.history()  # the reader never raises
    last = store.dir / "last_report.json"
    if last.exists():
        json.loads(last.read_text())
    return active
