"""Masking of personal data in user messages, applied as they are read (before anything is predicted,
ranked or written): e-mail addresses become ``<email>``, runs of 6 or more digits (optionally separated by
single spaces or dashes: phone, card, account and order numbers) become ``<number>``. Dates written with
``/`` or ``.`` and short numbers ("a table for 4 at 7") stay."""
from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
DIGITS = re.compile(r"(?<!\d)\d(?:[ -]?\d){5,}(?!\d)")
EMAIL_MASK, NUMBER_MASK = "<email>", "<number>"


def mask(text: str) -> str:
    return DIGITS.sub(NUMBER_MASK, EMAIL.sub(EMAIL_MASK, text))
