"""A Rasa 3 SQL tracker store filled the way Rasa fills it, and the production messages of the inbox tests.

The table is declared as Rasa 3's ``SQLTrackerStore.SQLEvent`` (rasa/core/tracker_store.py):
``__tablename__ = "events"``; ``id`` Integer primary key; ``sender_id`` String(255) not null, indexed;
``type_name`` String(255) not null; ``timestamp`` Float; ``intent_name``, ``action_name`` String(255);
``data`` Text, and created the way Rasa creates it (``Base.metadata.create_all(engine)``). Each row's
``data`` is what ``SQLTrackerStore.save`` writes: ``json.dumps(event.as_dict())``, with ``intent_name`` from
``parse_data.intent.name`` and ``action_name`` from the event's ``name``."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import declarative_base

from support.data import run_cli

Base = declarative_base()


class SQLEvent(Base):
    __tablename__ = "events"
    id = sa.Column(sa.Integer, primary_key=True)
    sender_id = sa.Column(sa.String(255), nullable=False, index=True)
    type_name = sa.Column(sa.String(255), nullable=False)
    timestamp = sa.Column(sa.Float)
    intent_name = sa.Column(sa.String(255))
    action_name = sa.Column(sa.String(255))
    data = sa.Column(sa.Text)


DAY = 86400.0
# what the test users said (newest last). Training examples in other spellings, near-duplicates, personal data,
# a button payload, gibberish and ambiguous messages, confident new paraphrases.
TRAINING_VARIANTS = ["Hello!", "hi", "Yes please", "NO WAY"]   # in data/sample/nlu.json as hello / hi / ...
UNCERTAIN = ["blorp zzzt quux", "what about tomorrow", "the pizza weather bye"]
CONFIDENT = ["thanks so much", "book a table for two at eight", "order a large pizza"]
DUPLICATES = ["will it snow in Oslo tomorrow", "Will it snow in Oslo tomorrow?", "will it  snow in oslo tomorrow"]
EMAIL = "bob.smith@example.com"
PHONE = "0170 1234567"
PERSONAL = [f"mail me at {EMAIL}", f"my number is {PHONE}"]
OLD = "this message is forty days old"
PAYLOAD = "/greet"


def user_event(text: str, ts: float, intent: str = "greet", confidence: float = 0.5) -> dict:
    parse = {"intent": {"name": intent, "confidence": confidence}, "entities": [], "text": text,
             "message_id": uuid.uuid4().hex, "metadata": {},
             "intent_ranking": [{"name": intent, "confidence": confidence}]}
    return {"event": "user", "timestamp": ts, "metadata": {}, "text": text, "parse_data": parse,
            "input_channel": "rest", "message_id": parse["message_id"]}


def rows(now: float | None = None) -> list[dict]:
    """The events of three conversations: user messages, the bot's answers and actions between them."""
    now = time.time() if now is None else now
    texts = TRAINING_VARIANTS + UNCERTAIN + CONFIDENT + DUPLICATES + PERSONAL + [PAYLOAD]
    out = [dict(sender_id="old-user", type_name="user", timestamp=now - 40 * DAY, intent_name="greet",
                data=json.dumps(user_event(OLD, now - 40 * DAY)))]
    for i, text in enumerate(texts):
        ts = now - 3600 + 60 * i
        sender = f"user-{i % 3}"
        event = user_event(text, ts)
        out.append(dict(sender_id=sender, type_name="user", timestamp=ts, intent_name="greet", data=json.dumps(event)))
        action = {"event": "action", "timestamp": ts + 1, "name": "utter_greet", "policy": "RulePolicy",
                  "confidence": 1.0}
        out.append(dict(sender_id=sender, type_name="action", timestamp=ts + 1, action_name="utter_greet",
                        data=json.dumps(action)))
        bot = {"event": "bot", "timestamp": ts + 2, "text": "Hey! How are you?", "data": {}, "metadata": {}}
        out.append(dict(sender_id=sender, type_name="bot", timestamp=ts + 2, data=json.dumps(bot)))
    columns = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
    return [{c: r.get(c) for c in columns} for r in out]


def fill(url: str, now: float | None = None) -> None:
    """Create Rasa's table (as Rasa does) and store the events."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(SQLEvent.__table__), rows(now))
    finally:
        engine.dispose()


def inbox_cli(store: dict, *args: str, **env: str):
    e = dict(store["env"], **env)
    return run_cli(["inbox", *args], e, timeout=180)


def files_text(folder: Path) -> str:
    """Every regular file under ``folder`` (a model's binaries included), as text."""
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())
