"""The registry interface: where models live and which one serves.

Every registry keeps the local store (the PVC: staging, models, reports, history, the file lock);
what differs is where the serving model is recorded and who evaluates. A new backend (an object
store, MLflow, ...) is one file with a ``from_settings(settings, store)`` factory, registered in
``registry/backends.py``.
"""
from __future__ import annotations

import abc
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from nlu_ci.engine.model import Model
from nlu_ci.errors import NluCiError, StoreError
from nlu_ci.evaluation import EvaluationResult
from nlu_ci.registry.store import ModelStore

log = logging.getLogger(__name__)


@dataclass
class Evaluated:
    """Both models scored on the same held-out examples (``tested``, in the order of ``utterances``)."""

    candidate: EvaluationResult
    active: EvaluationResult | None
    active_model: Model | None  # for checks that run the model (must-pass); None when it is not here
    tested: list[dict]
    problems: list[str] = field(default_factory=list)


class Registry(abc.ABC):
    """One project's models. ``store`` is the local store every registry trains into and reports to."""

    kind = "abstract"
    serving = "active"  # how people say a model serves here ("X is active", "X is tagged 'production'")
    uploads_candidates = False  # True: ``upload`` sends the candidate somewhere before evaluation
    data_revision: str | None = None  # the commit ``fetch_data`` fetched (data from git), else None

    def __init__(self, store: ModelStore):
        self.store = store

    # ------------------------------------------------------------ data
    @abc.abstractmethod
    def fetch_data(self, workdir: Path) -> tuple[Path, str]:
        """(where today's training data is, where it came from for the report)."""

    # ------------------------------------------------------------ which model serves
    @abc.abstractmethod
    def active(self) -> str | None:
        """The name of the model that serves today."""

    def previous(self) -> str | None:
        return self.store.previous_name()

    @abc.abstractmethod
    def activate(self, name: str) -> str | None:
        """Make ``name`` the serving model; returns the one that served before."""

    @abc.abstractmethod
    def rollback(self, requested: str | None) -> tuple[str, str | None]:
        """Serve the previous (or ``requested``) model again; (now active, active before). Hold the lock."""

    def status(self) -> tuple[dict | None, list[str]]:
        """Extra view for ``nlu-ci status``: (data, text lines); nothing for the local store."""
        return None, []

    # ------------------------------------------------------------ models
    def models(self) -> list[str]:
        return self.store.models()

    def metadata(self, name: str) -> dict:
        return self.store.metadata(name)

    def verify(self, name: str) -> list[str]:
        return self.store.verify(name)

    def open(self, name: str) -> Model:
        """A stored model, checked against its sha256 list before anything in it is loaded."""
        problems = self.store.verify(name)
        if problems:
            raise StoreError(f"model {name} is damaged: {problems[0]}")
        return Model(self.store.path(name), name)

    def commit(self, staged: Path, metadata: dict) -> Path:
        return self.store.commit(staged, metadata)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self.store.locked():
            yield

    # ------------------------------------------------------------ a run's candidate
    def upload(self, staged: Path, name: str, active: str | None, report: dict, scratch: Path) -> None:
        """Send the candidate where it must be before evaluation (nothing for the local store)."""
        return None

    def evaluate(self, candidate: Model, name: str, active: str | None, test: list[dict],
                 report: dict) -> Evaluated:
        """Score the candidate and the active model on the same examples (here: ``test``, in the job)."""
        return self.evaluate_locally(candidate, active, test, report)

    def evaluate_locally(self, candidate: Model, active: str | None, test: list[dict], report: dict) -> Evaluated:
        """Both models in this process on ``test``. A damaged or unloadable active model is reported, never
        fatal: the gate then treats the run like a bootstrap (absolute checks only)."""
        result = candidate.evaluate(test)
        if not active:
            return Evaluated(result, None, None, test)
        problems = self.store.verify(active)
        if not problems:
            try:
                model = Model(self.store.path(active), active)
                return Evaluated(result, model.evaluate(test), model, test)
            except NluCiError as err:
                problems = [str(err)]
        warning = f"active model {active} is unusable ({'; '.join(problems[:3])}); comparing against no active model"
        log.warning("%s", warning)
        report["warnings"].append(warning)
        report["active_unusable"] = {"model": active, "problems": problems[:20]}
        return Evaluated(result, None, None, test, problems)
