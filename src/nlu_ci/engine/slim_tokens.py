"""Training tokens in a quarter of the memory: rasa_nlu's ``WhitespaceTokenizer`` training, its tokens as
``SlimToken``.

rasa_nlu 0.15's ``Token`` keeps its four fields in an instance ``__dict__`` and gives every token its own
empty ``data`` dict: ~250 bytes a token, +195 MB for the 792,691 tokens of 100k examples, held by the
training process through every later fit. ``SlimToken`` has the same fields and methods (``offset``,
``text``, ``end``, ``data``, ``get``, ``set``) in ``__slots__``, its ``data`` dict made on first use and
the regex featurizer's ``pattern`` in a slot of its own.
``train`` is ``engine.training``'s replacement for the stock component's ``train`` (``STOCK_TRAIN``): the
stock ``tokenize`` makes the tokens, so the words and offsets are rasa_nlu's own; parsing (``process``)
keeps rasa_nlu's ``Token``.
"""
from __future__ import annotations

from typing import Any

_UNSET = object()


class SlimToken:
    """``offset``, ``text``, ``end``, ``data``, ``get``, ``set`` as rasa_nlu's ``Token``. The one property every
    token gets in training, the regex featurizer's ``pattern``, has a slot of its own: a dict per token
    just to hold it was +146 MB at 100k examples. ``data`` is made on first use (with ``pattern`` in it
    from then on), so reading or writing ``token.data`` directly behaves as stock."""

    __slots__ = ("offset", "text", "end", "_data", "_pattern")

    def __init__(self, text: str, offset: int, data: dict | None = None) -> None:
        self.offset = offset
        self.text = text
        self.end = offset + len(text)
        self._data = data if data else None
        self._pattern = _UNSET

    @property
    def data(self) -> dict:
        if self._data is None:
            self._data = {}
            if self._pattern is not _UNSET:
                self._data["pattern"] = self._pattern
                self._pattern = _UNSET
        return self._data

    @data.setter
    def data(self, value: dict) -> None:
        self._data, self._pattern = value, _UNSET

    def set(self, prop: str, info: Any) -> None:
        if prop == "pattern" and self._data is None:
            self._pattern = info
        else:
            self.data[prop] = info

    def get(self, prop: str, default: Any = None) -> Any:
        if self._data is not None:
            return self._data.get(prop, default)
        if prop == "pattern" and self._pattern is not _UNSET:
            return self._pattern
        return default

    def __getstate__(self) -> tuple:
        return self.offset, self.text, self.end, self.data

    def __setstate__(self, state: tuple) -> None:
        self.offset, self.text, self.end, data = state
        self._data, self._pattern = data or None, _UNSET

    def __repr__(self) -> str:
        return f"SlimToken({self.text!r}, {self.offset})"


def train(component, training_data, _config=None, **_context) -> None:
    """What ``WhitespaceTokenizer.train`` does (rasa_nlu 0.15: ``tokens`` of every training example), the
    tokens slim."""
    for example in training_data.training_examples:
        example.set("tokens", [SlimToken(t.text, t.offset) for t in component.tokenize(example.text)])
