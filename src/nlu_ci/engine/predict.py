"""Load a persisted rasa_nlu model and predict a list of utterances (plain Python results)."""
from __future__ import annotations

import logging
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci.engine.batch import predict_batch
from nlu_ci.engine.parse import normalise_parse, plain, predict_each
from nlu_ci.errors import StoreError

log = logging.getLogger(__name__)

__all__ = ["load_model", "predict", "predict_each", "normalise_parse", "plain"]


def load_model(path: Path | str):
    from rasa_nlu.model import Interpreter

    path = Path(path)
    if not (path / "metadata.json").is_file():
        raise StoreError(f"{path}: not a rasa_nlu model (metadata.json missing)")
    try:
        return Interpreter.load(str(path))
    except Exception as err:
        raise StoreError(f"{path}: cannot load the model: {type(err).__name__}: {err}") from None


def predict(interpreter, texts: list[str]) -> list[dict]:
    """Predict all texts: batched when every component supports it, else one parse per text."""
    batched = predict_batch(interpreter, texts)
    return predict_each(interpreter, texts) if batched is None else batched
