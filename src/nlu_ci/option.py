"""How one option is declared: a leaf module, so a channel or a registry backend declares the options it owns
(``OPTIONS = [Option(...)]`` in its own module) without importing ``settings``, which gathers them.

Every option is a ``--flag`` (never for a secret) and an environment variable; a secret also comes from a
``*_FILE`` variable (a mounted Secret, which wins).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINDS = ("str", "int", "float", "bool", "path", "paths", "choice", "secret")


@dataclass(frozen=True)
class Option:
    """One setting: attribute name, environment variable, default, help."""

    name: str
    env: str
    default: Any
    help: str
    kind: str = "str"  # one of KINDS
    choices: tuple[str, ...] = ()
    secret_file_env: str | None = None  # for kind == "secret"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def type(self) -> Any:
        """The Settings field's type."""
        if self.kind == "paths":
            return list[Path]
        base = {"int": int, "float": float, "bool": bool, "path": Path}.get(self.kind, str)
        return base if self.default is not None else base | None
