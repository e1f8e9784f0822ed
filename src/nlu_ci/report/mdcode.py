"""A Markdown code span that shows its text as written.

Inside backticks CommonMark escapes nothing (``\\_`` shows the backslash), so the text is not escaped: it is
kept on one line, secrets masked, and fenced with one backtick more than its longest run of backticks
(padded with a space when it starts or ends with one), which is how CommonMark puts a backtick in a span.
"""
from __future__ import annotations

import re
from typing import Any

from nlu_ci.redact import redact

_RUN = re.compile(r"`+")


def code(value: Any) -> str:
    text = " ".join(redact(str(value)).split())
    if not text:
        return "` `"
    fence = "`" * (max((len(m) for m in _RUN.findall(text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
