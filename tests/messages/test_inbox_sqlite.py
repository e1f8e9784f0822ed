"""``nlu-ci inbox`` on a Rasa 3 SQLite tracker store (a real nlu-ci process, a real active model): the
uncertain messages first, no training example, near-duplicates collapsed, personal data masked, the file a
Rasa YAML that nlu-ci reads back as training data; a store with another schema is a warning (exit 0) or,
with --strict-messages, exit 2."""
from __future__ import annotations

import json
import re
import sqlite3

import pytest

from nlu_ci.messages.inbox import WEIGHTS
from support.data import SAMPLE

from . import tracker
from .tracker import inbox_cli


def key(text: str) -> str:  # the test's own normalisation: lower case, word characters
    return " ".join(re.findall(r"\w+", text.lower()))


TRAINING_KEYS = {key(e["text"]) for e in json.loads(SAMPLE.read_text())["rasa_nlu_data"]["common_examples"]}


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("tracker") / "rasa.db"
    tracker.fill(f"sqlite:///{db}")
    return db


def test_inbox_lists_uncertain_messages_first_and_no_training_example(inbox_store, sqlite_db, tmp_path):
    out = tmp_path / "inbox.yml"
    r = inbox_cli(inbox_store, "--messages", f"sqlite:///{sqlite_db}", "--output", str(out), "--output-format", "json")
    assert r.code == 0, r.output
    data = r.json
    entries = data["entries"]
    texts = [e["text"] for e in entries]
    # read: the 15 user messages of the last 30 days (the 40-day-old one is outside the window; the button
    # payload is no utterance; bot and action events are not user messages)
    assert data["messages_read"] == 15 and data["skipped"] == {"button payloads (/intent)": 1}, data
    assert tracker.OLD not in texts and tracker.PAYLOAD not in texts
    # no training example, in any spelling
    assert data["training_examples"] == len(tracker.TRAINING_VARIANTS)
    assert not [t for t in texts if key(t) in TRAINING_KEYS]
    # the three spellings of one question are one entry, seen 3 times
    oslo = [e for e in entries if key(e["text"]) == key(tracker.DUPLICATES[0])]
    assert len(oslo) == 1 and oslo[0]["count"] == 3
    assert len(entries) == data["unique"] == 3 + 3 + 1 + 2
    # every uncertain message ranks above every confident one
    position = {t: i for i, t in enumerate(texts)}
    assert max(position[t] for t in tracker.UNCERTAIN) < min(position[t] for t in tracker.CONFIDENT), texts
    # the order is the documented priority, recomputed here from what the entries report
    for e in entries:
        unseen = len([w for w in re.findall(r"\w+", re.sub("<email>|<number>", " ", e["text"]).lower())
                      if w in e["unseen"]]) / max(1, len(re.findall(r"\w+", re.sub("<email>|<number>", " ",
                                                                                     e["text"]))))
        expected = (WEIGHTS["low_confidence"] * (1 - e["confidence"]) + WEIGHTS["small_margin"] * (1 - e["margin"])
                    + WEIGHTS["unseen"] * unseen)
        assert e["priority"] == pytest.approx(expected, abs=2e-4), e
    assert [e["priority"] for e in entries] == sorted((e["priority"] for e in entries), reverse=True)
    # the suggestion is what the active model itself says (rasa_nlu's Interpreter, loaded here)
    from rasa_nlu.model import Interpreter

    import nlu_ci.engine  # noqa: F401  (compat shims)

    interpreter = Interpreter.load(str(inbox_store["store"] / data["model"]))
    for e in entries:
        parsed = interpreter.parse(e["text"])
        assert e["intent"] == parsed["intent"]["name"]
        assert e["confidence"] == pytest.approx(parsed["intent"]["confidence"], abs=1e-4)
    # personal data masked before anything was predicted or written
    for secret in (tracker.EMAIL, tracker.PHONE, "1234567", "bob.smith"):
        assert secret not in r.output and secret not in out.read_text()
    assert "mail me at <email>" in texts and "my number is <number>" in texts
    # the file: Rasa YAML, grouped by suggested intent, that nlu-ci reads back as training data
    from nlu_ci.data import dataset

    text = out.read_text()
    assert text.count("# confidence ") == len(entries) and 'version: "3.1"' in text
    back = dataset.load_training_data(out)
    read = {m.text: m.get("intent") for m in back.training_examples}
    assert read == {e["text"]: e["intent"] for e in entries}  # entity markup suggested in the file, text unchanged
    assert {m.get("intent") for m in back.training_examples} == {e["intent"] for e in entries}


def test_default_file_is_in_the_store_and_masking_can_be_turned_off(inbox_store, sqlite_db):
    r = inbox_cli(inbox_store, "--messages", f"sqlite:///{sqlite_db}", "--no-mask-messages", "--limit", "20")
    assert r.code == 0, r.output
    path = inbox_store["store"] / "inbox.yml"
    assert f"inbox {path}: 9 entries from 15 messages" in r.stdout
    assert path.stat().st_mode & 0o777 == 0o640
    # without masking the messages are there as written (so the masking of the other test is what hid them)
    assert f'"mail me at {tracker.EMAIL}"' in path.read_text() and tracker.PHONE in path.read_text()
    path.unlink()


def settings_for(url: str, **extra):
    from nlu_ci import settings

    return settings.from_env({"NLU_CI_MESSAGES_URL": url, **extra})


def test_a_tracker_store_with_another_schema_is_a_warning_or_exit_2_when_strict(inbox_store, tmp_path):
    from nlu_ci.messages import sources

    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, payload TEXT)")
    url = f"sqlite:///{db}"
    batch = sources.read(settings_for(url))
    assert batch.messages == [] and batch.warnings == [
        f"messages: tracker store {url}: unknown schema: table 'events' has no column data, timestamp, type_name "
        "(not Rasa's SQLTrackerStore)"]
    missing = tmp_path / "missing.db"
    batch = sources.read(settings_for(f"sqlite:///{missing}"))
    assert batch.warnings == [f"messages: tracker store sqlite:///{missing}: no SQLite file {missing}"]
    assert not missing.exists()  # never created by looking
    # the real process: exit 2 with --strict-messages, one line, no file written
    strict = inbox_cli(inbox_store, "--messages", url, "--strict-messages", "--output", str(tmp_path / "j.yml"))
    assert strict.code == 2 and "Traceback" not in strict.output
    assert "--strict-messages: messages: tracker store" in strict.stderr and "unknown schema" in strict.stderr
    assert not (tmp_path / "j.yml").exists()


def test_inbox_from_a_query_log_folder(inbox_store, tmp_path):
    """The query log as rasa_nlu's DataRouter writes it (its own logger), a line that is not JSON among them."""
    from rasa_nlu.data_router import DataRouter

    import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)

    folder = tmp_path / "query-log"
    logger = DataRouter._create_query_logger(str(folder))
    for text in tracker.UNCERTAIN + tracker.CONFIDENT + ["hi"]:
        response = {"text": text, "intent": {"name": "greet", "confidence": 0.5}, "entities": [], "intent_ranking": [],
                    "project": "default", "model": "model_x"}
        logger.info("", user_input=response, project="default", model="model_x")
    [log] = list(folder.iterdir())
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("{truncated by a crash\n")
    r = inbox_cli(inbox_store, "--messages", str(folder), "--json", "--output", str(tmp_path / "inbox.yml"))
    assert r.code == 0, r.output
    assert r.json["warnings"] == [f"{log}:8: query-log line skipped (not JSON)"]
    assert f"{log}:8: query-log line skipped (not JSON)" in r.stderr  # logged as a warning too
    texts = [e["text"] for e in r.json["entries"]]
    assert sorted(texts) == sorted(tracker.UNCERTAIN + tracker.CONFIDENT) and r.json["training_examples"] == 1
    position = {t: i for i, t in enumerate(texts)}
    assert max(position[t] for t in tracker.UNCERTAIN) < min(position[t] for t in tracker.CONFIDENT), texts
