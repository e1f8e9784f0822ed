"""Reading training data as Rasa teams write it today, and keeping it honest.

- ``sources``: which files of a file or folder are NLU data (stories, rules, domain, config and tests/ are
  skipped with a note)
- ``readers``: one file to rasa_nlu 0.15 ``TrainingData`` (JSON, Markdown, Rasa 2/3 YAML via ``rasa_yaml``;
  entity markup via ``markup``)
- ``cleaning``: entity spans trimmed or dropped, each repair listed, a limit on their share
- ``checks``: the findings of ``nlu-ci validate`` (conflicts, duplicates, near-duplicate names, ...)
- ``stage``: the ``validate`` stage of ``run`` (report, warnings, ``--strict-data``)

What a reader noticed travels with the data it returned (``attach``/``notes_of``): notes (features that were
ignored, files that were skipped) and repairs (annotations changed or dropped).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ATTRIBUTE = "nlu_ci_notes"


@dataclass
class Notes:
    notes: list[str] = field(default_factory=list)     # one line each: "file:line: what was ignored and why"
    repairs: list[dict] = field(default_factory=list)  # {"where", "action", "entity", "reason", ...}
    skipped: list[str] = field(default_factory=list)   # files of a folder that are not NLU data
    examples: int = 0                                  # examples read (the base of the repair share)

    def extend(self, other: Notes) -> None:
        self.notes.extend(other.notes)
        self.repairs.extend(other.repairs)
        self.skipped.extend(other.skipped)
        self.examples += other.examples


def attach(data, notes: Notes):
    setattr(data, ATTRIBUTE, notes)
    return data


def notes_of(data) -> Notes:
    return getattr(data, ATTRIBUTE, None) or Notes(examples=len(getattr(data, "training_examples", []) or []))
