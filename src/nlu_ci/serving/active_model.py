"""Which model a project serves: the one ``ACTIVE`` names, read through the store's public methods, never another.

``resolve(models_dir, project)`` returns an ``ActiveModel`` or raises ``NoModel`` (nothing to serve: unknown
project, no active model yet; HTTP 404) or ``StoreError`` (the store cannot be read, or the active model is
missing or damaged; HTTP 503). A candidate is never returned: only ``ACTIVE`` is read, and it only ever names a
complete model (the job renames a model into place before it points ``ACTIVE`` at it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu_ci.errors import StoreError
from nlu_ci.names import PROJECT_NAME  # the one rule for project names (run, status, report, serve too)
from nlu_ci.registry.store import ModelStore
from nlu_ci.serving.zips import model_etag


class NoModel(Exception):
    """Nothing to serve for this request (HTTP 404); ``str`` is the one-line reason."""


@dataclass(frozen=True)
class ActiveModel:
    project: str
    name: str
    dir: Path
    meta: dict[str, Any]
    etag: str

    @property
    def files(self) -> dict[str, str]:
        return self.meta.get("files") or {}


def check_root(models_dir: Path) -> list[str]:
    """The projects in the store; StoreError when the store itself cannot be read (not mounted, no permission)."""
    try:
        return sorted(e.name for e in os.scandir(models_dir) if e.is_dir() and PROJECT_NAME.match(e.name))
    except OSError as err:
        raise StoreError(f"model store {models_dir} is not readable: {err.strerror or err}") from None


def resolve(models_dir: Path, project: str) -> ActiveModel:
    if not PROJECT_NAME.match(project):
        raise NoModel(f"{project[:80]!r} is not a project name")
    check_root(models_dir)
    store = ModelStore(models_dir, project)
    if not store.dir.is_dir():
        raise NoModel(f"no project {project!r} in the model store")
    name = store.active_name()  # None also when ACTIVE is damaged: the job recovers from that, a server must not guess
    if not name:
        pointer = store.dir / "ACTIVE"
        if pointer.exists() or pointer.is_symlink():
            raise StoreError(f"project {project!r}: cannot read {pointer} as a model name (damaged pointer)")
        raise NoModel(f"project {project!r} has no active model yet")
    model_dir = store.path(name)  # StoreError for a name that is not a model folder name
    if not model_dir.is_dir():
        raise StoreError(f"active model {name} of project {project!r}: model folder missing")
    meta = store.metadata(name)  # StoreError when nlu_ci.json is missing or unreadable
    if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict) or not meta["files"]:
        raise StoreError(f"active model {name} of project {project!r}: {store.dir / name}/nlu_ci.json lists no files")
    return ActiveModel(project, name, model_dir, meta, model_etag(name, meta))
