"""rasa_nlu 0.15's ``RegexFeaturizer.process`` for many messages, with the same results and less Python per token.

The stock ``features_for_patterns`` walks every token once per pattern, reading and writing its ``pattern``
dict through ``Token.get``/``Token.set`` and comparing it with every match: with HWU64's 67 patterns that
was half of a batched evaluation. Here each pattern's engine is looked up once, each token's dict is filled
from one all-``False`` template (a C-level dict copy) and only patterns that matched compare offsets. The
matches come from the same ``finditer`` rasa_nlu's module calls (``rasa_compat`` puts
``nlu_ci.regexes.finditer`` there), the dicts get the same keys in the same order with the same values, and
the text features are combined by the component's own method (tests/engine/test_eval_fast.py compares both
paths). Repeated pattern names (last one wins, stock) take the stock code. A plain literal pattern (HWU64's
67 are words: ``regexes.literal``) is looked for once in all the batch's texts joined (``literal_hits``), so
the texts it does not occur in cost nothing: before, every pattern was searched in every text.

Memory: stock gives every token its own dict of every pattern name (67 names: ~1.4 KB a token, +110 MB for
HWU64's 9,960 examples, +1.1 GB at 100k). Here tokens with the same matched names share one read-only
``SharedMarks`` (a ``dict`` with the same keys, order and values; writing to it raises ``TypeError``): the
stock code, which updates a token's dict in place, runs (``stock_process``) on private copies.

``rasa_compat`` makes this the component's ``process`` too (a batch of one: each ``/parse`` of ``nlu-ci serve``
and every per-message parse); ``stock_process`` is rasa_nlu's own body of it. The matchers are made once per
component (per list of patterns), not per message.
"""
from __future__ import annotations

import bisect
import itertools

import numpy as np

from nlu_ci import regexes


class SharedMarks(dict):
    """A token's ``pattern`` dict shared by every token with the same matches: read it like a dict; copy it
    (``dict(marks)``) to change it."""

    __slots__ = ()

    def _read_only(self, *_args, **_kwargs):
        raise TypeError("a token's shared pattern marks are read-only: change a copy, dict(marks)")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _read_only

    def __reduce__(self):
        return (SharedMarks, (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, _memo):
        return self


def _private_marks(tokens) -> None:
    """Each token's shared marks replaced by its own copy (the stock code writes into them)."""
    for token in tokens:
        marks = token.get("pattern")
        if isinstance(marks, SharedMarks):
            token.set("pattern", dict(marks))


def _never(_text: str):
    return None


def _matchers(known_patterns: list[dict]) -> list[tuple]:
    """(search, finditer) per pattern: ``finditer(text)`` makes the calls rasa_nlu's module would make;
    ``search(text)`` is None exactly when it finds nothing (a cheaper first look; None: always look)."""
    from rasa_nlu.featurizers import regex_featurizer

    finditer = regex_featurizer.re.finditer
    out = []
    for exp in known_patterns:
        pattern = exp["pattern"]
        if finditer is regexes.finditer:
            _kind, compiled = regexes._engine(pattern)
            if compiled is None:   # never matches (regexes.finditer: an empty iterator)
                out.append((_never, None))
            else:
                out.append((compiled.search, compiled.finditer))
        else:
            out.append((None, lambda text, p=pattern: finditer(p, text)))
    return out


def stock_process(component, message, **_context) -> None:
    """rasa_nlu 0.15's ``RegexFeaturizer.process``, as it is written there (it writes into each token's marks:
    ``process_batch`` makes them private first)."""
    message.set("text_features", component._text_features_with_regex(message))


def _prepared(component):
    """(matchers with their names, the all-False template) of ``component``'s patterns; None: take the stock code."""
    from rasa_nlu.featurizers import regex_featurizer

    patterns = component.known_patterns
    key = (id(patterns), len(patterns), regex_featurizer.re.finditer)
    cached = component.__dict__.get("_nlu_ci_regex_batch")
    if cached is not None and cached[0] == key and cached[1] is patterns:
        return cached[2]
    names = [exp["name"] for exp in patterns]
    prepared = None
    if names and len(set(names)) == len(names):
        matchers = _matchers(patterns)
        literals = [(k, regexes.literal(exp["pattern"]) if search not in (None, _never) else None)
                    for k, (exp, (search, _)) in enumerate(zip(patterns, matchers, strict=True))]
        literals = [(k, text) for k, text in literals if text is not None and SEPARATOR not in text]
        plain = {k for k, _ in literals}
        prepared = (list(zip(matchers, names, strict=True)), dict.fromkeys(names, False), literals,
                    [k for k in range(len(patterns)) if k not in plain])
    component.__dict__["_nlu_ci_regex_batch"] = (key, patterns, prepared)
    return prepared


SEPARATOR = "\x00"   # between the texts that literal_hits searches at once


def literal_hits(literals: list[tuple[int, str]], texts: list[str]) -> list[list[int]]:
    """For each text, the ``k`` of the literal patterns ``(k, literal)`` that occur in it, ascending (given
    ascending). Many texts: each literal is searched once in all of them joined by ``SEPARATOR``, which no
    literal holds, so an occurrence lies inside one text, found by its offset (HWU64: 67 searches instead
    of 67 per text)."""
    if len(texts) < 2:
        return [[k for k, literal in literals if literal in text] for text in texts]
    hits: list[list[int]] = [[] for _ in texts]
    joined = SEPARATOR.join(texts)
    starts = list(itertools.accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
    last = len(texts) - 1
    for k, literal in literals:
        at = joined.find(literal)
        while at != -1:
            i = bisect.bisect_right(starts, at) - 1
            hits[i].append(k)
            if i == last:
                break
            at = joined.find(literal, starts[i + 1])   # the next text: one hit per text is enough
    return hits


def process_batch(component, messages: list, **_context) -> None:
    """What ``component.process(message)`` does, for each message in turn."""
    prepared = _prepared(component)
    if prepared is None:
        for message in messages:
            _private_marks(message.get("tokens") or [])
            stock_process(component, message)
        return
    matchers, template, literals, others = prepared
    shared: dict[tuple, SharedMarks] = {(): SharedMarks(template)}   # matched names -> their marks
    for start in range(0, len(messages), CHUNK):
        chunk = messages[start:start + CHUNK]
        _mark(chunk, literal_hits(literals, [message.text for message in chunk]), matchers, template, others,
              shared, component)


CHUNK = 2048   # messages whose texts literal_hits searches at once (its joined text and lists are per chunk,
               # not one per example of a 100k training set)


def _mark(messages: list, literal: list[list[int]], matchers: list, template: dict, others: list[int],
          shared: dict, component) -> None:
    for message, occurring in zip(messages, literal, strict=True):
        text = message.text
        tokens = message.get("tokens", [])
        found = [False] * len(matchers)
        hits = []   # (name, [hit per token]) of the patterns that matched somewhere in the text
        for k in sorted(others + occurring) if others else occurring:   # pattern order: one tuple per combination
            (search, finditer), name = matchers[k]
            if search is not None and search(text) is None:
                continue
            matches = [(m.start(), m.end()) for m in finditer(text)]
            if not matches:
                continue
            each = [any(t.offset < m_end and t.end > m_start for m_start, m_end in matches) for t in tokens]
            found[k] = any(each)
            hits.append((name, each))
        for i, token in enumerate(tokens):
            matched = tuple(name for name, each in hits if each[i]) if hits else ()
            mark = token.get("pattern")
            if mark is None:   # the first featurizer: one shared dict per combination of matched names
                mark = shared.get(matched)
                if mark is None:
                    mark = shared[matched] = SharedMarks({**template, **dict.fromkeys(matched, True)})
            else:              # after another featurizer: this token's own dict, as stock
                mark = dict(mark)
                mark.update(template)
                mark.update(dict.fromkeys(matched, True))
            token.set("pattern", mark)
        extras = np.array(found, dtype=float) if hits else np.zeros(len(found))
        message.set("text_features", component._combine_with_existing_text_features(message, extras))


def train(component, training_data, _config=None, **_context) -> None:
    """What ``component.train(training_data, config)`` does (rasa_nlu 0.15 regex_featurizer.py: take the
    data's patterns and lookup tables, then ``process`` every training example), the examples batched."""
    component.known_patterns = training_data.regex_features
    component._add_lookup_table_regexes(training_data.lookup_tables)
    process_batch(component, training_data.training_examples)


def _process_one(self, message, **context) -> None:
    process_batch(self, [message], **context)


def install() -> None:
    """``RegexFeaturizer.process`` = ``process_batch`` of one message (same results, a third of the time)."""
    from rasa_nlu.featurizers.regex_featurizer import RegexFeaturizer

    RegexFeaturizer.process = _process_one
