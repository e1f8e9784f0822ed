"""rasa_nlu 0.15's ``RegexFeaturizer.process`` for many messages, with the same results and less Python per token.

The stock ``features_for_patterns`` walks every token once per pattern, reading and writing its ``pattern``
dict through ``Token.get``/``Token.set`` and comparing it with every match: with HWU64's 67 patterns that
was half of a batched evaluation. Here each pattern's engine is looked up once, each token's dict is filled
from one all-``False`` template (a C-level dict copy) and only patterns that matched compare offsets. The
matches come from the same ``finditer`` rasa_nlu's module calls (``rasa_compat`` puts
``nlu_ci.regexes.finditer`` there), the dicts get the same keys in the same order with the same values, and
the text features are combined by the component's own method (tests/engine/test_eval_fast.py compares both
paths). Repeated pattern names (last one wins, stock) take the stock code.

Memory: stock gives every token its own dict of every pattern name (67 names: ~1.4 KB a token, +110 MB for
HWU64's 9,960 examples, +1.1 GB at 100k). Here tokens with the same matched names share one read-only
``SharedMarks`` (a ``dict`` with the same keys, order and values; writing to it raises ``TypeError``): the
stock code, which updates a token's dict in place, runs (``stock_process``) on private copies.

``rasa_compat`` makes this the component's ``process`` too (a batch of one: each ``/parse`` of ``nlu-ci serve``
and every per-message parse); ``stock_process`` is rasa_nlu's own body of it. The matchers are made once per
component (per list of patterns), not per message.
"""
from __future__ import annotations

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
        prepared = (list(zip(_matchers(patterns), names, strict=True)), dict.fromkeys(names, False))
    component.__dict__["_nlu_ci_regex_batch"] = (key, patterns, prepared)
    return prepared


def process_batch(component, messages: list, **_context) -> None:
    """What ``component.process(message)`` does, for each message in turn."""
    prepared = _prepared(component)
    if prepared is None:
        for message in messages:
            _private_marks(message.get("tokens") or [])
            stock_process(component, message)
        return
    matchers, template = prepared
    shared: dict[tuple, SharedMarks] = {(): SharedMarks(template)}   # matched names -> their marks
    for message in messages:
        text = message.text
        tokens = message.get("tokens", [])
        found = [False] * len(matchers)
        hits = []   # (name, [hit per token]) of the patterns that matched somewhere in the text
        for k, ((search, finditer), name) in enumerate(matchers):
            if search is not None and search(text) is None:
                continue
            matches = [(m.start(), m.end()) for m in finditer(text)]
            if not matches:
                continue
            each = [any(t.offset < m_end and t.end > m_start for m_start, m_end in matches) for t in tokens]
            found[k] = any(each)
            hits.append((name, each))
        for i, token in enumerate(tokens):
            matched = tuple(name for name, each in hits if each[i])
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
        extras = np.array(found).astype(float)
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
