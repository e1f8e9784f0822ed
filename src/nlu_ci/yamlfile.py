"""Read a YAML configuration file (pipeline config, policy, must-pass list) with one-line errors."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nlu_ci.errors import ConfigError


def read_yaml(path: Path | str, what: str, where: str | None = None) -> tuple[Any, str]:
    """(parsed YAML, text) of ``path``; any problem is a ConfigError naming ``where`` (default: the path) and
    ``what`` the file is ("pipeline config", "policy file", ...). An empty file parses as None."""
    path = Path(path)
    where = where or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: {what} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: {what} is a folder, not a file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: {what} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot read {what}: {err.strerror or err}") from None
    try:
        return yaml.safe_load(text), text
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: invalid YAML{at}: {getattr(err, 'problem', None) or err}") from None
