"""The message readers against what writes them: rasa_nlu 0.15's own query logger (DataRouter's), a
rasa_core-era SQLite table; bad lines, oversized records, the age window and masking; and the live agreement
of two real models counted by hand."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from nlu_ci import masking, settings
from nlu_ci.messages import MAX_RECORD_BYTES, live, sources

from . import tracker


def settings_for(where, **env):
    return settings.from_env({"NLU_CI_MESSAGES_URL": str(where), **env})


def parse_result(text: str, intent: str = "greet", confidence: float = 0.6) -> dict:
    """What rasa_nlu's Project.parse returns (and DataRouter.parse logs)."""
    return {"intent": {"name": intent, "confidence": confidence}, "entities": [],
            "intent_ranking": [{"name": intent, "confidence": confidence}], "text": text, "project": "default",
            "model": "model_20261201-000000"}


@pytest.fixture
def query_log(tmp_path) -> tuple[Path, Path]:
    """A query-log folder written by rasa_nlu's own DataRouter query logger, plus hostile lines."""
    from rasa_nlu.data_router import DataRouter

    import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)

    folder = tmp_path / "query-log"
    logger = DataRouter._create_query_logger(str(folder))
    for text in ("where is my order", "hello", f"write to {tracker.EMAIL}", "x" * 3000):
        response = parse_result(text)
        logger.info("", user_input=response, project="default", model=response.get("model"))  # as DataRouter.parse
    [path] = list(folder.glob("rasa_nlu_log-*.log"))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("this is not json\n")
        fh.write(json.dumps({"user_input": parse_result("y" * (MAX_RECORD_BYTES + 10))}) + "\n")
        fh.write(json.dumps({"no": "user_input"}) + "\n")
        response = parse_result("the last one")
        fh.write(json.dumps({"user_input": response, "project": "default", "log_time": time.time()}) + "\n")
    return folder, path


def test_query_log_as_rasa_nlu_writes_it(query_log):
    folder, path = query_log
    batch = sources.read(settings_for(folder))
    assert [m.text for m in batch.messages] == ["the last one", "write to <email>", "hello", "where is my order"]
    assert batch.messages[1].intent == "greet" and batch.messages[1].confidence == pytest.approx(0.6)
    assert batch.warnings == [f"{path}:5: query-log line skipped (not JSON)",
                              f"{path}:7: query-log line skipped (no 'user_input' object)"]
    assert batch.skipped == {"over 1 MiB": 1, "longer than 2000 characters": 1}
    with pytest.raises(Exception) as err:
        sources.read(settings_for(folder, NLU_CI_STRICT_MESSAGES="true"))
    assert getattr(err.value, "exit_code", None) == 2 and f"{path}:5" in str(err.value)


def test_limit_age_window_and_missing_folder(query_log, tmp_path):
    folder, _ = query_log
    # the limit counts user events read, newest first: the 3000-character one is read, then dropped
    limited = sources.read(settings_for(folder, NLU_CI_MESSAGES_LIMIT="3"))
    assert [m.text for m in limited.messages] == ["the last one", "write to <email>"]
    assert limited.skipped["beyond the limit"] == 2
    later = time.time() + 2 * 86400  # two days on: nothing is within a one-day window
    assert sources.read(settings_for(folder, NLU_CI_MESSAGES_MAX_AGE_DAYS="1"), now=later).messages == []
    batch = sources.read(settings_for(tmp_path / "nowhere"))
    assert batch.warnings == [f"messages: query log {tmp_path / 'nowhere'}: {tmp_path / 'nowhere'}: no such folder "
                              "(a query-log folder or an SQLAlchemy URL)"]


def test_rasa_core_012_conversations_table_and_bad_event_data(tmp_path):
    db = tmp_path / "core.db"
    with sqlite3.connect(db) as conn:  # rasa_core 0.12's SQLEvent: __tablename__ = 'conversations'
        conn.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY, sender_id VARCHAR NOT NULL, "
                     "type_name VARCHAR NOT NULL, timestamp FLOAT, intent_name VARCHAR, action_name VARCHAR, "
                     "data VARCHAR)")
        now = time.time()
        conn.executemany("INSERT INTO conversations (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                         [("a", "user", now - 5, json.dumps(tracker.user_event("order a pizza", now - 5))),
                          ("a", "user", now - 4, "{not json"),
                          ("a", "user", now - 3, json.dumps(tracker.user_event("x" * 10, now - 3) | {"text": None}
                                                            | {"parse_data": {}})),
                          ("a", "user", now - 2, "z" * (MAX_RECORD_BYTES + 1))])
    batch = sources.read(settings_for(f"sqlite:///{db}"))
    assert [m.text for m in batch.messages] == ["order a pizza"]
    assert batch.skipped == {"over 1 MiB": 1, "no text": 1}
    assert batch.warnings == [f"sqlite:///{db}: 1 user event(s) whose data is not a JSON object skipped"]


@pytest.mark.parametrize(("text", "masked"), [
    ("mail bob.smith+nlu@mail.example.co.uk now", "mail <email> now"),
    ("call +49 170 1234567 or 0170-1234567", "call +<number> or <number>"),
    ("card 4111 1111 1111 1111", "card <number>"),
    ("a table for 4 at 7 on 12/24/2026", "a table for 4 at 7 on 12/24/2026"),
    ("order 12345 and 123456", "order 12345 and <number>"),
])
def test_masking(text, masked):
    assert masking.mask(text) == masked


def test_live_agreement_equals_a_count_by_hand(tmp_path):
    from nlu_ci.engine.model import Model
    from support.data import load_sample
    from support.train import train

    examples = load_sample()["rasa_nlu_data"]["common_examples"]
    active = Model(train(tmp_path / "a").model_dir)
    # the candidate never saw thank_you: messages of thanks must move to another intent
    candidate = Model(train(tmp_path / "c", [e for e in examples if e["intent"] != "thank_you"]).model_dir)
    texts = ["thanks so much", "Thanks so much!", "many thanks for your help", "will it rain in Rome",
             "book a table for two", "hello there friend", "blorp zzzt", "no way", "thank you kindly bot"]
    messages = [tracker_message(t) for t in texts]
    out = live.agreement(candidate, active, messages, n=8)
    unique = [t for t in texts if t != "Thanks so much!"][:8]  # the second spelling is the same message
    by_hand = sum(active.interpreter.parse(t)["intent"]["name"] != candidate.interpreter.parse(t)["intent"]["name"]
                  for t in unique)
    assert out["messages"] == 8 and out["disagreeing"] == by_hand and by_hand >= 2
    assert out["disagreement"] == pytest.approx(by_hand / 8)
    assert all(m["from"] != m["to"] for m in out["moves"]) and sum(m["count"] for m in out["moves"]) == by_hand
    assert any(m["from"] == "thank_you" for m in out["moves"])
    # the gate check: off by default (report only), fails above the policy's share, and then blocks a promotion
    from nlu_ci import gate

    assert live.check(out, None).enabled is False and live.check(out, None).passed
    assert live.check(out, out["disagreement"]).passed
    failing = live.check(out, out["disagreement"] - 0.01)
    assert failing.enabled and not failing.passed
    decision = live.apply(gate.Decision(True, [], "better"), out, out["disagreement"] - 0.01)
    assert not decision.promote and decision.reason.startswith("max_live_disagreement: ")
    assert decision.checks == [failing]
    assert live.apply(gate.Decision(True, [], "better"), None, 0.0).checks == []  # no messages configured
    assert live.check(None, 0.1).enabled is False  # no messages compared: not applicable
    # the run's stage: from a tracker store, the newest unique messages, into report["live"]
    db = tmp_path / "rasa.db"
    tracker.fill(f"sqlite:///{db}")
    report: dict = {"warnings": []}
    section = live.stage(settings_for(f"sqlite:///{db}"), candidate, active, report)
    assert report["live"] is section and section["read"] == 15 and report["warnings"] == []
    assert section["messages"] == 13  # 15 read, the three spellings of the Oslo question are one
    assert live.stage(settings.from_env({}), candidate, active, report) is None  # not configured: no section


def tracker_message(text: str):
    from nlu_ci.messages import Message

    return Message(text, time.time())
