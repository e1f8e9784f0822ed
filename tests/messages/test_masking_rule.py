"""One masking rule in one place (``nlu_ci/masking.py``, a leaf): what ``nlu-ci serve --query-log`` writes and
what ``--messages`` reads are masked by the same function, on the cases either side used to decide alone."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nlu_ci import masking
from nlu_ci.messages import Batch, Message, sources
from nlu_ci.serving import query_log

SRC = Path(__file__).resolve().parents[2] / "src" / "nlu_ci"
CASES = [
    ("mail bob.smith+nlu@mail.example.co.uk now", "mail <email> now"),
    ("call +49 170 1234567 or 0170-1234567", "call +<number> or <number>"),
    ("tel 030.123.456", "tel <number>"),                       # dots between digits: masked on both sides
    ("iban DE44 5001 0517 5407 3249 31", "iban DE<number>"),
    ("on 2026-12-02 or 02.12.2026", "on <number> or <number>"),
    ("a table for 4 at 7 on 12/24/2026", "a table for 4 at 7 on 12/24/2026"),
    ("order 12345 and 123456.", "order 12345 and <number>."),
]


@pytest.mark.parametrize(("text", "masked"), CASES)
def test_reader_and_query_log_mask_alike(text, masked):
    assert masking.mask(text) == masked
    assert query_log.mask_text(text) == masked
    assert query_log.masked({"text": text, "entities": [{"value": text}]}) == {"text": masked,
                                                                              "entities": [{"value": masked}]}
    batch = Batch(source="x", messages=[Message(text)])
    assert [m.text for m in sources.clean(batch, mask=True)] == [masked]


def test_the_rule_is_written_once_in_a_leaf():
    tree = ast.parse((SRC / "masking.py").read_text())
    imported = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all("nlu_ci" not in (getattr(n, "module", None) or "") and all("nlu_ci" not in a.name for a in n.names)
               for n in imported)
    # the digit-run and e-mail patterns are compiled in masking.py only
    holders = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                     if r"\d(?:[" in p.read_text() or "[A-Za-z]{2,}" in p.read_text())
    assert holders == ["masking.py"], holders
