"""Regular expressions that come from training data, run so that none can hang training or serving.

rasa_nlu 0.15's ``RegexFeaturizer`` runs every ``regex_features`` pattern with Python's backtracking ``re``
on every training text and every ``/parse`` query: ``^(a+)+$`` against 36 ``a`` and a ``!`` takes minutes,
and the time doubles with each character (in C code: no signal or timeout can stop it). The rule here:

* a pattern with a **repetition** (``*``, ``+``, ``?``, ``{m,n}``, found by parsing it, not by guessing)
  runs on **RE2** (``google-re2``): an automaton, linear in the text whatever the pattern, so there is no
  catastrophic input at all;
* a pattern without any repetition (a word list such as the lookup tables rasa_nlu builds from
  ``re.escape``-d elements: ``(?i)(\\bberlin\\b|\\bparis\\b)``) cannot backtrack more than once per
  alternative and position, and keeps Python's ``re`` (rasa_nlu's exact semantics, Unicode ``\\b``);
* a pattern that repeats and needs what RE2 does not have (backreferences ``\\1``, lookaround ``(?=``,
  ``(?<!``, possessive or atomic groups, ``\\Z``) is refused by ``problem`` when the data is read (exit 2,
  one line naming the file and the pattern), as is one whose automaton exceeds ``MAX_MEM`` bytes.

A model trained before this rule may hold such a pattern: it then never matches (a warning, once per
pattern), never falls back to ``re``. ``finditer`` is what ``rasa_compat`` puts in rasa_nlu's place.
Known differences of RE2 (docs/reliability.md): ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII-only, ``$``
does not match before a final newline.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterator

log = logging.getLogger(__name__)

MAX_MEM = 32 << 20  # bytes RE2 may use for one compiled pattern (its default is 8 MiB)
_REPEATS = None


def _repeat_codes() -> set:
    global _REPEATS
    if _REPEATS is None:
        import re._constants as c  # noqa: PLC0415  (Python's own regex parser: what re.compile would see)

        _REPEATS = {getattr(c, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(c, n)}
    return _REPEATS


def has_repetition(pattern: str) -> bool:
    """Does ``pattern`` (valid for Python's ``re``) repeat anything? Parsed, so ``\\*`` or ``[+]`` do not count."""
    import re._parser as parser  # noqa: PLC0415

    stack = [parser.parse(pattern)]
    repeats = _repeat_codes()
    while stack:
        item = stack.pop()
        if isinstance(item, parser.SubPattern):
            stack.extend(item.data)
        elif isinstance(item, tuple | list):
            if item and not isinstance(item, list) and item[0] in repeats:
                return True
            stack.extend(x for x in item if isinstance(x, tuple | list | parser.SubPattern))
    return False


def literal(pattern: str) -> str | None:
    """The one text ``pattern`` matches when it is a plain literal (Python's ``re`` would search for exactly
    that text: no metacharacter, class, group, anchor or case folding; parsed, so ``a\\.b`` is ``a.b``); else
    None, and None for the empty pattern (which matches everywhere)."""
    import re._constants as c  # noqa: PLC0415
    import re._parser as parser  # noqa: PLC0415

    try:
        parsed = parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    if parsed.state.flags & (re.IGNORECASE | re.LOCALE) or not parsed.data:
        return None
    if any(op is not c.LITERAL for op, _ in parsed.data):
        return None
    return "".join(chr(code) for _, code in parsed.data)


@functools.lru_cache(maxsize=1024)
def _re2(pattern: str):
    """The RE2 program of ``pattern``; ValueError with RE2's reason when it cannot compile it."""
    import re2  # noqa: PLC0415

    options = re2.Options()
    options.log_errors = False  # RE2 would log each refusal on stderr through absl
    options.max_mem = MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        reason = err.args[0].decode("utf-8", "replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        raise ValueError(reason) from None


@functools.lru_cache(maxsize=1024)
def _engine(pattern: str):
    """('re' | 're2' | None, compiled): the engine a data pattern runs on (None: it never matches)."""
    try:
        if not has_repetition(pattern):
            return "re", re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return None, None
    try:
        return "re2", _re2(pattern)
    except ValueError as err:
        log.warning("regex feature %r repeats and RE2 cannot run it (%s): it never matches (a backtracking engine "
                    "could take exponential time on it)", pattern[:80], err)
        return None, None


def problem(pattern: str) -> str | None:
    """Why ``pattern`` (already valid for Python's ``re``) is refused as a data regex, or None."""
    if not has_repetition(pattern):
        return None
    try:
        _re2(pattern)
    except ValueError as err:
        return (f"refused: it repeats (a backtracking engine can take exponential time on it) and RE2, the engine "
                f"that runs such patterns in linear time, cannot run it: {err} (backreferences, lookaround, "
                "possessive quantifiers and \\Z are not available; see docs/reliability.md)")
    return None


def finditer(pattern: str, text: str, flags: int = 0) -> Iterator:
    """The matches of a data ``pattern`` in ``text`` (objects with ``start()``/``end()``), on the engine above."""
    if flags:  # rasa_nlu never passes flags; anything else keeps the stdlib behaviour
        return re.finditer(pattern, text, flags)
    kind, compiled = _engine(pattern)
    if compiled is None:
        return iter(())
    return compiled.finditer(text)
