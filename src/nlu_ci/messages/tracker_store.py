"""User messages from a Rasa SQL tracker store, read-only, via SQLAlchemy.

The schema is Rasa's ``SQLTrackerStore.SQLEvent`` (rasa/core/tracker_store.py, Rasa 1.x to 3.x and rasa_core
0.14): table ``events`` with ``id``, ``sender_id``, ``type_name``, ``timestamp`` (float, Unix seconds),
``intent_name``, ``action_name`` and ``data`` (the event's JSON: a user event has ``text`` and
``parse_data``). rasa_core before 0.13 named the same table ``conversations``; it is read too.

Bounded: only ``type_name = 'user'`` rows of the age window, newest first, at most ``limit``, none whose
``data`` exceeds ``MAX_RECORD_BYTES`` (counted, never fetched). A store that is down, refuses us or has
another schema raises ``Unavailable`` (one line naming it, password masked). PostgreSQL sessions are
read-only with a statement timeout; an SQLite file is opened read-only (never created).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nlu_ci import redact
from nlu_ci.errors import one_line
from nlu_ci.messages import MAX_RECORD_BYTES, Batch, Message

TABLES = ("events", "conversations")  # Rasa 1.x-3.x and rasa_core 0.14 | rasa_core <= 0.12
COLUMNS = {"type_name", "timestamp", "data"}
CONNECT_TIMEOUT = 10  # seconds
STATEMENT_TIMEOUT_MS = 60_000


class Unavailable(Exception):
    """The tracker store cannot be read (down, refused, unknown schema): one line, no secret."""


def _engine(url: str):
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as err:
        raise Unavailable(f"not an SQLAlchemy URL ({type(err).__name__})") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise Unavailable("an SQLite URL needs a file: sqlite:///path/to/rasa.db")
        if not Path(path).is_file():
            raise Unavailable(f"no SQLite file {path}")
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        return sqlalchemy.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True,
                                                                                    timeout=CONNECT_TIMEOUT))
    if backend == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", "postgresql") and "+" not in parsed.drivername:
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the driver nlu-ci ships
        args = {"connect_timeout": CONNECT_TIMEOUT,
                "options": f"-c default_transaction_read_only=on -c statement_timeout={STATEMENT_TIMEOUT_MS}"}
        return sqlalchemy.create_engine(parsed, connect_args=args, poolclass=sqlalchemy.pool.NullPool)
    try:
        return sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.pool.NullPool)
    except Exception as err:  # no driver installed for that database
        raise Unavailable(f"cannot open a {backend} database ({one_line(err, 200)})") from None


def _table(engine):
    import sqlalchemy

    names = sqlalchemy.inspect(engine).get_table_names()
    for name in TABLES:
        if name in names:
            columns = {c["name"] for c in sqlalchemy.inspect(engine).get_columns(name)}
            if COLUMNS <= columns:
                return sqlalchemy.Table(name, sqlalchemy.MetaData(), autoload_with=engine)
            missing = ", ".join(sorted(COLUMNS - columns))
            raise Unavailable(f"unknown schema: table {name!r} has no column {missing} (not Rasa's SQLTrackerStore)")
    shown = ", ".join(sorted(names)[:10]) or "none"
    raise Unavailable(f"unknown schema: no table 'events' with Rasa's columns type_name, timestamp, data "
                      f"(tables: {shown})")


def message_of(data: str, timestamp) -> Message | None:
    """A user event's ``data`` JSON -> Message (None: no text)."""
    event = json.loads(data)
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    parse = event.get("parse_data") if isinstance(event.get("parse_data"), dict) else {}
    text = event.get("text") if isinstance(event.get("text"), str) else parse.get("text")
    if not isinstance(text, str):
        return None
    intent = parse.get("intent") if isinstance(parse.get("intent"), dict) else {}
    confidence = intent.get("confidence")
    return Message(text, float(timestamp) if timestamp is not None else None,
                   intent.get("name") if isinstance(intent.get("name"), str) else None,
                   float(confidence) if isinstance(confidence, int | float) else None)


def read(url: str, batch: Batch, *, limit: int, since: float) -> None:
    """Append the newest ``limit`` user messages since ``since`` (Unix seconds) to ``batch``."""
    import sqlalchemy

    try:
        engine = _engine(url)
        try:
            table = _table(engine)
            c = table.c
            fits = sqlalchemy.func.length(c.data) <= MAX_RECORD_BYTES
            recent = sqlalchemy.and_(c.type_name == "user", c.timestamp >= since)
            order = [c.timestamp.desc()] + ([c.id.desc()] if "id" in c else [])
            with engine.connect() as conn:
                rows = conn.execute(sqlalchemy.select(c.data, c.timestamp).where(recent, fits)
                                    .order_by(*order).limit(limit)).all()
                big = conn.execute(sqlalchemy.select(sqlalchemy.func.count()).select_from(table)
                                   .where(recent, sqlalchemy.not_(fits))).scalar()
        finally:
            engine.dispose()
    except Unavailable:
        raise
    except sqlalchemy.exc.SQLAlchemyError as err:
        detail = getattr(err, "orig", None) or err
        raise Unavailable(f"cannot read ({type(detail).__name__}: {one_line(redact.redact(detail), 300)})") from None
    batch.skip("over 1 MiB", int(big or 0))
    bad = 0
    for data, timestamp in rows:
        try:
            message = message_of(data, timestamp) if data else None
        except (ValueError, TypeError):
            bad += 1
            continue
        if message is None:
            batch.skip("no text")
        else:
            batch.messages.append(message)
    if bad:
        batch.warnings.append(f"{redact.redact(url)}: {bad} user event(s) whose data is not a JSON object skipped")
