"""``read(settings) -> Batch``: the production messages, from whichever source the URL names, bounded,
masked, with warnings. A source that is down, unknown or has bad lines is a warning (the command goes on)
unless ``--strict-messages``: then ``DataError`` (exit 2). Nothing here writes a file."""
from __future__ import annotations

import logging
import time

from nlu_ci import masking
from nlu_ci.errors import DataError
from nlu_ci.messages import MAX_TEXT_CHARS, Batch, query_log, tracker_store, url

log = logging.getLogger(__name__)
DAY = 86400.0


def read(settings, now: float | None = None) -> Batch:
    where = url.resolve(settings)
    if where is None:
        return Batch()
    batch = Batch(source=url.shown(where))
    since = (time.time() if now is None else now) - settings.messages_max_age_days * DAY
    reader = tracker_store if url.is_sql(where) else query_log
    try:
        reader.read(where, batch, limit=settings.messages_limit, since=since)
    except (tracker_store.Unavailable, query_log.Unavailable) as err:
        what = "tracker store" if reader is tracker_store else "query log"
        batch.warnings.append(f"messages: {what} {batch.source}: {err}")
    batch.messages = clean(batch, settings.mask_messages)
    for warning in batch.warnings:
        log.warning("%s", warning)
    if batch.warnings and settings.strict_messages:
        raise DataError(f"--strict-messages: {batch.warnings[0]}"
                        + (f" (and {len(batch.warnings) - 1} more)" if len(batch.warnings) > 1 else ""))
    return batch


def clean(batch: Batch, mask: bool) -> list:
    """Drop what is no utterance (empty, over ``MAX_TEXT_CHARS``, a ``/intent`` button payload), mask the rest."""
    out = []
    for m in batch.messages:
        text = " ".join(m.text.split())
        if not text:
            batch.skip("empty")
        elif len(text) > MAX_TEXT_CHARS:
            batch.skip(f"longer than {MAX_TEXT_CHARS} characters")
        elif text.startswith("/"):
            batch.skip("button payloads (/intent)")
        else:
            out.append(type(m)(masking.mask(text) if mask else text, m.timestamp, m.intent, m.confidence))
    return out
