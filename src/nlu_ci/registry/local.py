"""The local store as the registry: the PVC alone says which model serves (``ACTIVE``)."""
from __future__ import annotations

from pathlib import Path

from nlu_ci.data import git_source
from nlu_ci.errors import ConfigError, DataError, StoreError
from nlu_ci.redact import redact
from nlu_ci.registry.base import Registry
from nlu_ci.registry.store import ModelStore, iso, now_utc

NAME = "local"
OPTIONS: list = []  # the store (--models-dir, --project) and the data (--data, --data-git-*) are every run's


class LocalRegistry(Registry):
    kind = "store"

    def __init__(self, store: ModelStore, data: Path | None = None, git: git_source.GitSource | None = None):
        super().__init__(store)
        self.data = data
        self.git = git  # --data-git-url: the data is fetched from a repository (data/git_source.py)

    def fetch_data(self, workdir: Path) -> tuple[Path, str]:
        if self.git is not None:
            fetched = self.git.fetch(workdir)
            self.data_revision = fetched.revision
            return fetched.path, fetched.source
        if self.data is None:
            raise DataError("no training data: set --data / NLU_CI_DATA (file or folder) or RASA_PLATFORM_HOST")
        return self.data, redact(str(self.data))

    def active(self) -> str | None:
        return self.store.active_name()

    def activate(self, name: str) -> str | None:
        return self.store.activate(name)

    def rollback(self, requested: str | None) -> tuple[str, str | None]:
        store = self.store
        current = store.active_name()
        target = requested or store.previous_name()
        if not target:
            raise ConfigError(f"rollback: no previous model recorded in {store.dir}; name one: nlu-ci rollback MODEL")
        if target not in store.models():
            raise ConfigError(f"rollback: no complete model named {target!r} in {store.dir}")
        problems = store.verify(target)
        if problems:
            raise StoreError(f"rollback: model {target} is damaged: {problems[0]}")
        if target == current:
            return target, current
        previous = store.activate(target)
        store.append_history({"event": "rollback", "at": iso(now_utc()), "model": target, "previous": previous,
                              "outcome": "rollback"})
        return target, previous


def from_settings(settings, store: ModelStore) -> LocalRegistry:
    return LocalRegistry(store, settings.data, git_source.from_settings(settings))
