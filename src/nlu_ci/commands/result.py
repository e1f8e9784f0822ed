"""What a command returns: data for ``--json``, text for people, the exit code. Only ``cli`` prints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nlu_ci.errors import EXIT_OK


@dataclass
class Result:
    data: Any
    text: str
    exit_code: int = EXIT_OK
