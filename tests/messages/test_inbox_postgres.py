"""``nlu-ci inbox`` on a real PostgreSQL 15 tracker store with Rasa 3's ``events`` table (tests/support/postgres.py
starts the server as nobody on loopback, with password authentication): the uncertain messages first, none
that are training examples, and the URL's password nowhere in what nlu-ci prints or writes; a store that
refuses or is down is one warning naming it (exit 0), or exit 2 with --strict-messages."""
from __future__ import annotations

import socket

from support.postgres import PASSWORD

from . import tracker
from .tracker import files_text, inbox_cli


def test_postgres_inbox_ranks_uncertain_first_and_never_shows_the_password(inbox_store, postgres_server, tmp_path):
    url = postgres_server.create_db("inbox_e2e")
    tracker.fill(url)
    secret = tmp_path / "messages-url"
    secret.write_text(url + "\n")  # a mounted Secret holding the URL
    out = tmp_path / "inbox.yml"
    r = inbox_cli(inbox_store, "--output", str(out), "--json", NLU_CI_MESSAGES_URL_FILE=str(secret))
    assert r.code == 0, r.output
    data = r.json
    texts = [e["text"] for e in data["entries"]]
    assert data["messages_read"] == 15 and data["training_examples"] == len(tracker.TRAINING_VARIANTS)
    assert not set(texts) & set(tracker.TRAINING_VARIANTS)
    position = {t: i for i, t in enumerate(texts)}
    assert max(position[t] for t in tracker.UNCERTAIN) < min(position[t] for t in tracker.CONFIDENT), texts
    assert data["source"] == f"postgresql://rasa:***@127.0.0.1:{postgres_server.port}/inbox_e2e"
    assert "mail me at <email>" in texts and tracker.EMAIL not in out.read_text()
    # the password: not on stdout, not in the log, not in the inbox file, not anywhere in the store
    for where, text in (("output", r.output), ("inbox file", out.read_text()),
                        ("store", files_text(inbox_store["store"]))):
        assert PASSWORD not in text, where


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the with ends: nothing listens there


def test_a_refused_or_down_tracker_store_is_one_warning_or_exit_2_when_strict(inbox_store, postgres_server,
                                                                              tmp_path):
    wrong = postgres_server.url_for("rasa", password="not-the-" + PASSWORD)
    r = inbox_cli(inbox_store, "--messages", wrong, "--json", "--output", str(tmp_path / "a.yml"))
    assert r.code == 0, r.output
    [warning] = r.json["warnings"]
    assert warning.startswith(f"messages: tracker store postgresql://rasa:***@127.0.0.1:{postgres_server.port}/rasa: "
                              "cannot read (OperationalError: "), warning
    assert "password authentication failed" in warning and r.json["entries"] == []
    assert PASSWORD not in r.output and "not-the-" not in r.output
    port = _closed_port()
    down = postgres_server.url_for("rasa").replace(f":{postgres_server.port}/", f":{port}/")
    strict = inbox_cli(inbox_store, "--messages", down, "--strict-messages", "--output", str(tmp_path / "b.yml"))
    assert strict.code == 2 and "Traceback" not in strict.output, strict.output
    assert f"--strict-messages: messages: tracker store postgresql://rasa:***@127.0.0.1:{port}/rasa: cannot read" \
        in strict.stderr
    assert PASSWORD not in strict.output and not (tmp_path / "b.yml").exists()


def test_a_postgres_database_without_rasa_events_is_an_unknown_schema(postgres_server):
    from nlu_ci import settings
    from nlu_ci.messages import sources

    url = postgres_server.create_db("not_rasa")
    postgres_server.execute("not_rasa", "CREATE TABLE events (id serial PRIMARY KEY, kind text, body jsonb)")
    batch = sources.read(settings.from_env({"NLU_CI_MESSAGES_URL": url}))
    assert batch.messages == [] and len(batch.warnings) == 1
    assert "unknown schema: table 'events' has no column data, timestamp, type_name" in batch.warnings[0]
    assert PASSWORD not in batch.warnings[0] and "rasa:***@" in batch.warnings[0]
