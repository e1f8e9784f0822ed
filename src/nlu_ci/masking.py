"""The one masking rule for user messages (a leaf: imports nothing of nlu_ci). Used where messages are read
(``messages.sources``: tracker store and query-log folders) and where ``nlu-ci serve --query-log`` writes them
(``serving.query_log``), so that what is stored and what is read are masked alike (docs/inbox.md "Masking").

E-mail addresses become ``<email>``; runs of 6 or more digits, with single spaces, dots or dashes allowed between
them (phone, card, IBAN, account and order numbers, ``2026-12-02``, ``030.123.456``), become ``<number>``. Short
numbers ("a table for 4 at 7", "order 12345") and dates written with ``/`` stay."""
from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
DIGITS = re.compile(r"(?<!\d)\d(?:[ .\-]?\d){5,}(?!\d)")
EMAIL_MASK, NUMBER_MASK = "<email>", "<number>"


def mask(text: str) -> str:
    return DIGITS.sub(NUMBER_MASK, EMAIL.sub(EMAIL_MASK, text))
