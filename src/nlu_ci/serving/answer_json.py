"""rasa_nlu's ``json_to_string`` (``json.dumps(obj, indent=2, ensure_ascii=False)``), the same text, faster.

With an indent the standard library never takes its C encoder: every value of a ``/parse`` answer goes through
``json.encoder``'s generic Python generators (a quarter of a parse's time). ``dumps`` walks the answer's
plain types (dict with str keys, list, tuple, str, int, float, bool, None) with the same separators, the same
string escaping (``json.encoder.encode_basestring``, its C version), the same number texts (``int.__repr__``,
``float.__repr__``, ``NaN``/``Infinity``) and the same order; anything else (another key type, a value that is
none of these) makes it hand the whole object to ``json_to_string``, so the text is always what rasa_nlu's
server sends (tests/serving/test_answer_json.py compares both on real answers and on odd values).
"""
from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any

INDENT = 2
_INF = float("inf")


class _Other(Exception):
    """A value ``dumps`` leaves to the standard library."""


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


def _encode(o: Any, level: int, out: list) -> None:
    if isinstance(o, str):
        out.append(encode_basestring(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = "\n" + " " * (INDENT * (level + 1))
        out.append("[" + inner)
        first = True
        for value in o:
            if not first:
                out.append("," + inner)
            first = False
            _encode(value, level + 1, out)
        out.append("\n" + " " * (INDENT * level) + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + " " * (INDENT * (level + 1))
        out.append("{" + inner)
        first = True
        for key, value in o.items():
            if not isinstance(key, str):
                raise _Other
            if not first:
                out.append("," + inner)
            first = False
            out.append(encode_basestring(key) + ": ")
            _encode(value, level + 1, out)
        out.append("\n" + " " * (INDENT * level) + "}")
    else:
        raise _Other


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=2, ensure_ascii=False)``, character for character."""
    out: list[str] = []
    try:
        _encode(obj, 0, out)
    except (_Other, RecursionError):
        return json.dumps(obj, indent=INDENT, ensure_ascii=False)
    return "".join(out)
