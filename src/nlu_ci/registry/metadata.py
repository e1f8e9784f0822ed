"""What a stored model carries about itself (``nlu_ci.json`` besides the checksums): where it came from."""
from __future__ import annotations

import hashlib
from pathlib import Path

from nlu_ci import __version__
from nlu_ci.data import dataset
from nlu_ci.registry.store import iso, now_utc


def model_metadata(project: str, config: tuple[Path, str], fingerprint: str, split: dataset.Split,
                   data_info: dict, started_at: str, train_seconds: float) -> dict:
    path, text = config
    import rasa_nlu

    return {
        "project": project,
        "created_at": iso(now_utc()),
        "run_started_at": started_at,
        "fingerprint": fingerprint,
        "config": {"path": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text},
        "data": data_info,
        "split": split.params,
        "train_seconds": round(train_seconds, 3),
        "versions": {"nlu_ci": __version__, "rasa_nlu": getattr(rasa_nlu, "__version__", "?")},
    }
