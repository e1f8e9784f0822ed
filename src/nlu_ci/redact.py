"""Keep secrets out of every log line, error, report and metric.

Secrets are registered once (``register``) when settings are read; ``redact(text)`` replaces each with
``***`` in every form it can travel in (``secret_forms``): raw, JSON-escaped, URL-encoded once and twice
(upper- and lower-case hex, ``quote`` and ``quote_plus``), and base64 (standard and URL-safe, with or without
padding, at each of the 3 byte offsets it can have inside a longer encoded value such as
``Basic base64(user:password)``). It also masks the password of credentials in URLs
(``scheme://user:password@host``), ``api_token=...``/``token=...`` query values, ``Bearer``/``Basic``
credentials and Slack webhook paths, even when the value was never registered.
``install_logging_filter()`` applies it to all log records.
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

_lock = threading.Lock()
_secrets: set[str] = set()
_forms: re.Pattern[str] | None = None
MASK = "***"
MIN_FORM = 4  # a base64 core shorter than this could match ordinary text
_PATTERNS = [
    re.compile(r"(?i)(api_token=)[^&\s\"']+"),
    re.compile(r"(?i)(token=)[^&\s\"']+"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=_-]{8,}"),
    re.compile(r"(https://hooks\.slack\.com/services/)\S+"),
    # credentials in a URL: scheme://user:password@host (the user name stays, the password goes)
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@\"'<>]*:)[^/\s@\"'<>]+(?=@)"),
    # the same inside a URL-encoded URL (?next=http%3A%2F%2Fuser%3Apass%40host)
    re.compile(r"(?i)([a-z][a-z0-9+.-]*%3A%2F%2F(?:(?!%2F|%40|%3A)[^/\s&\"'<>])*%3A)(?:(?!%40)[^/\s&\"'<>])+(?=%40)"),
]


def _percent_variants(text: str) -> set[str]:
    return {text, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)}


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend only on ``raw`` when it starts at byte offset 0, 1 or 2 of a longer
    encoded value (the characters at the edges mix in neighbouring bytes, so they are left out)."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw + b"\0\0").decode()
        first = -(-8 * offset // 6)                   # first character made only of secret bits
        last = (8 * (offset + len(raw))) // 6          # one past the last such character
        core = encoded[first:last]
        if len(core) >= MIN_FORM:
            cores.add(core)
    whole = base64.b64encode(raw).decode()
    cores |= {whole, whole.rstrip("=")}
    return cores | {c.translate(str.maketrans("+/", "-_")) for c in cores}


def secret_forms(secret: str) -> set[str]:
    """Every encoded form of ``secret`` that is masked (also used by the tests' secret scan)."""
    forms = {secret, json.dumps(secret)[1:-1]}
    for once in (quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)):
        forms |= _percent_variants(once)
        for twice in (quote(once, safe=""), quote_plus(once, safe="")):
            forms |= _percent_variants(twice)
    forms |= _base64_cores(secret.encode("utf-8"))
    return {f for f in forms if len(f) >= MIN_FORM}


def register(secret: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears, in any encoding."""
    global _forms
    if secret and len(secret.strip()) >= 4:
        with _lock:
            if secret.strip() in _secrets:
                return
            _secrets.add(secret.strip())
            forms = set().union(*(secret_forms(s) for s in _secrets))
            # percent-encoded forms in any hex case (%2b, %252B, ...): case-insensitive
            _forms = re.compile("|".join(f"(?i:{re.escape(f)})" if "%" in f else re.escape(f)
                                         for f in sorted(forms, key=len, reverse=True)))


def redact(text: object) -> str:
    s = str(text)
    with _lock:
        forms = _forms
    if forms is not None:
        s = forms.sub(MASK, s)
    for pattern in _PATTERNS:
        s = pattern.sub(lambda m: m.group(1) + MASK, s)
    return s


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_logging_filter() -> None:
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
