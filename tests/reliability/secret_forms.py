"""The encoded forms of a secret that the secret scan looks for, written independently of ``nlu_ci.redact``:
raw, JSON-escaped, URL-encoded once and twice (upper/lower-case hex), base64 (standard and URL-safe, with and
without padding, and the part that depends only on the secret at each of the 3 byte offsets inside a longer
base64 value such as ``Basic base64(user:secret)``)."""
from __future__ import annotations

import base64
import json
from urllib.parse import quote


def _b64_inner(raw: bytes, offset: int) -> str:
    encoded = base64.b64encode(bytes(offset) + raw + bytes(2)).decode()
    first = (8 * offset + 5) // 6
    last = (8 * (offset + len(raw))) // 6
    return encoded[first:last]


def encoded_forms(secret: str) -> tuple[str, ...]:
    raw = secret.encode()
    forms = {secret, json.dumps(secret)[1:-1]}
    once = quote(secret, safe="")
    twice = quote(once, safe="")
    forms |= {once, once.lower(), twice, twice.lower(), quote(secret)}
    whole = base64.b64encode(raw).decode()
    url = base64.urlsafe_b64encode(raw).decode()
    forms |= {whole, whole.rstrip("="), url, url.rstrip("=")}
    for offset in range(3):
        inner = _b64_inner(raw, offset)
        forms |= {inner, inner.replace("+", "-").replace("/", "_")}
    return tuple(sorted(f for f in forms if len(f) >= 6))
