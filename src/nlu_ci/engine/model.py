"""One loaded model: load once, predict a batch, evaluate. Used by run, evaluate, compare and must-pass."""
from __future__ import annotations

from pathlib import Path

from nlu_ci.engine.predict import load_model, predict
from nlu_ci.engine.tokens import tokenize
from nlu_ci.evaluation import EvaluationResult, evaluate


class Model:
    """A persisted rasa_nlu model folder, loaded on first use (a must-pass check that never runs never loads it).

    The folder is taken as given: a stored model is verified by its registry before it is opened.
    """

    def __init__(self, path: Path | str, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self._interpreter = None

    @property
    def interpreter(self):
        if self._interpreter is None:
            self._interpreter = load_model(self.path)
        return self._interpreter

    def predict(self, texts: list[str]) -> list[dict]:
        return predict(self.interpreter, texts)

    def evaluate(self, examples: list[dict]) -> EvaluationResult:
        texts = [e["text"] for e in examples]
        tokens = tokenize(self.interpreter, texts) if self.extracts_entities else None  # token-level entity scores
        return evaluate(examples, self.predict(texts), tokens=tokens)

    @property
    def extracts_entities(self) -> bool:
        """Whether the pipeline has a component that provides entities."""
        return any("entities" in (getattr(c, "provides", None) or []) for c in self.interpreter.pipeline)

    def __repr__(self) -> str:
        return f"Model({str(self.path)!r})"
