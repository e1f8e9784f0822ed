"""Keep secrets out of every log line, error, report and metric.

Secrets are registered once (``register``) when settings are read; ``redact(text)`` replaces each
with ``***``, and also masks ``api_token=...`` query values and ``Bearer ...`` headers in URLs and
messages even when the value was never registered. ``install_logging_filter()`` applies it to all
log records.
"""
from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"
_PATTERNS = [
    re.compile(r"(?i)(api_token=)[^&\s\"']+"),
    re.compile(r"(?i)(token=)[^&\s\"']+"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(https://hooks\.slack\.com/services/)\S+"),
]


def register(secret: str | None) -> None:
    """Remember a secret value so that it is masked wherever it appears."""
    if secret and len(secret.strip()) >= 4:
        with _lock:
            _secrets.add(secret.strip())


def redact(text: object) -> str:
    s = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in s:
            s = s.replace(secret, MASK)
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
