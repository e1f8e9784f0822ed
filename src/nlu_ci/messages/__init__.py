"""Real user messages in: readers of production messages, and what nlu-ci makes of them.

- ``url``: where the messages are (``--messages`` / ``NLU_CI_MESSAGES_URL`` / ``NLU_CI_MESSAGES_URL_FILE``)
- ``tracker_store``: user events of a Rasa SQL tracker store (Rasa 1.x-3.x, rasa_core 0.14), via SQLAlchemy
- ``query_log``: rasa_nlu 0.15's query log folder (``response_log``: one JSON record per line)
- masking: ``nlu_ci.masking`` (the one rule, shared with ``nlu-ci serve --query-log``), applied as messages are read
- ``sources``: one entry point, ``read(settings) -> Batch``: bounds, masking, warnings, ``--strict-messages``
- ``inbox`` / ``inbox_yaml``: the messages worth annotating, ranked, as a Rasa YAML file
- ``live``: candidate and active on the same production messages (live agreement)

User messages are personal data: nothing here writes them anywhere but the store (or a file the user names).
"""
from __future__ import annotations

from dataclasses import dataclass, field

MAX_RECORD_BYTES = 1 << 20  # a tracker-store row or query-log line over 1 MiB is skipped unread (with a note)
MAX_TEXT_CHARS = 2000       # a message longer than this is no utterance to annotate: skipped (with a note)


@dataclass(frozen=True)
class Message:
    """One user message as the production system saw it (``intent``/``confidence``: what it predicted then)."""

    text: str
    timestamp: float | None = None
    intent: str | None = None
    confidence: float | None = None


@dataclass
class Batch:
    """What a source gave: messages (newest first), warnings (problems: ``--strict-messages`` fails on them)
    and skip counts (expected: old, oversized, button payloads)."""

    source: str | None = None  # the URL or folder, password redacted
    messages: list[Message] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str, n: int = 1) -> None:
        if n:
            self.skipped[why] = self.skipped.get(why, 0) + n

    def summary(self) -> dict:
        return {"source": self.source, "messages": len(self.messages), "warnings": list(self.warnings),
                "skipped": dict(sorted(self.skipped.items()))}
