"""``--out-of-scope FILE`` / ``NLU_CI_OUT_OF_SCOPE``: messages the assistant must not answer (they must fall back).

Two formats (docs/policy.md, "Out-of-scope messages"):

* ``.json``, ``.md``, ``.yml``, ``.yaml``: Rasa NLU training data (JSON, Markdown or YAML, as ``--data``); every
  example's text is an out-of-scope message, its intent (if any) is ignored;
* any other name (``.txt``): UTF-8 plain text, one message per line; blank lines and lines starting with ``#``
  are skipped.

A file that is missing, not UTF-8, garbled or holds no message is a ``DataError`` (exit 2) naming it, read
before anything is trained.
"""
from __future__ import annotations

from pathlib import Path

from nlu_ci import safeio
from nlu_ci.errors import DataError

RASA_SUFFIXES = (".json", ".md", ".yml", ".yaml")
WHAT = "out-of-scope file (--out-of-scope / NLU_CI_OUT_OF_SCOPE)"


def read(path: Path | str) -> list[str]:
    """The out-of-scope messages of ``path`` in file order, duplicates kept once."""
    path = Path(path)
    if path.suffix.lower() in RASA_SUFFIXES:
        texts = _rasa_texts(path)
    else:
        text = safeio.read_text(path, WHAT, kind="data", error=DataError)
        texts = [line.strip() for line in text.splitlines()]
        texts = [t for t in texts if t and not t.startswith("#")]
    texts = list(dict.fromkeys(t for t in texts if t.strip()))
    if not texts:
        raise DataError(f"{path}: {WHAT} holds no message")
    return texts


def _rasa_texts(path: Path) -> list[str]:
    from nlu_ci.data import dataset

    if not path.is_file():
        safeio.read_bytes(path, WHAT, kind="data", error=DataError)  # the one-line "not found"/"is a folder"
    data = dataset.load_training_data_for_test(path)
    return [m.text for m in data.training_examples]
