"""Load a persisted rasa_nlu model and predict a list of utterances (plain Python results)."""
from __future__ import annotations

import functools
import logging
import math
from pathlib import Path

import nlu_ci.engine  # noqa: F401  (compat shims before rasa_nlu)
from nlu_ci import cpus
from nlu_ci.engine import child
from nlu_ci.engine.batch import predict_batch, supports_batch
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


SPLIT_AT = 500   # texts: a smaller batch stays in one process (a fork and the answer's trip cost ~5-10 ms)


def predict(interpreter, texts: list[str], workers: int | None = None) -> list[dict]:
    """Predict all texts: batched when every component supports it, else one parse per text.

    A batch of at least ``SPLIT_AT`` texts with more than one worker (``cpus.workers``: the pod's CPU limit or
    ``NLU_CI_WORKERS``; 1 inside a cv task) is cut into contiguous parts predicted side by side, all but the
    first in a forked child (``child.beside``; only from the main thread): each prediction depends on its own
    text only, so the results are those of one process, in the same order."""
    n = cpus.workers() if workers is None else workers
    if n > 1 and len(texts) >= SPLIT_AT and child.isolated() and supports_batch(interpreter):
        size = math.ceil(len(texts) / n)
        parts = [texts[i:i + size] for i in range(0, len(texts), size)]
        mine, theirs = child.beside(functools.partial(predict_batch, interpreter, parts[0]),
                                    [functools.partial(predict_batch, interpreter, part) for part in parts[1:]],
                                    n, "prediction")
        return [*mine, *(p for part in theirs for p in part)]
    batched = predict_batch(interpreter, texts)
    return predict_each(interpreter, texts) if batched is None else batched
