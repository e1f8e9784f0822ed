"""One data file -> rasa_nlu 0.15 ``TrainingData`` with what the reader noticed attached (``data.notes_of``).

Rasa 2/3 YAML goes to ``rasa_yaml``; Markdown with ``[text]{"entity": ...}`` markup is rewritten to the
``[text](entity:value)`` form rasa_nlu reads (roles and groups noted, never trained as text); everything else
is read by rasa_nlu's own ``load_data``.
"""
from __future__ import annotations

from pathlib import Path

from nlu_ci.data import Notes, attach, markup, rasa_schema, rasa_yaml, sources


def read(path: Path, raw: str):
    """rasa_nlu TrainingData of one file (``raw``: its text). rasa_nlu's exceptions pass through."""
    if sources.is_yaml(path):
        data, notes = rasa_yaml.read(raw, path)
        return attach(data, notes)
    notes = Notes()
    if path.suffix.lower() in sources.MARKDOWN_SUFFIXES or not raw.lstrip().startswith(("{", "[")):
        if markup.has_json_markup(raw):
            from rasa_nlu.training_data.formats import MarkdownReader

            text, notes.notes, notes.repairs = markup.rewrite_markdown(raw, str(path))
            data = MarkdownReader().reads(text)
            notes.examples = len(data.training_examples)
            return attach(data, notes)
    from rasa_nlu.training_data import load_data

    rasa_schema.install()   # the schema check without jsonschema's walk when the file passes it
    data = load_data(str(path))
    notes.examples = len(data.training_examples)
    return attach(data, notes)
