"""One exception type per kind of failure; each carries the process exit code the CLI uses.

Raise them where the problem is found, with a message that names the file or endpoint and the
problem in one line (never a secret: see ``nlu_ci.redact``).

Exit codes (documented in the README):
  0  the run completed, whatever the outcome (promoted, rejected, skipped, locked, dry_run)
  1  runtime failure (I/O, network, platform, training crashed, terminated, a lost Lease), or a
     ``rollback``/``train`` that found the store locked and did nothing
  2  bad configuration, data or usage (retrying will not help)
  3  ``check`` only: the candidate fails the promotion gate (the check itself ran fine)
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_GATE_FAILED = 3
MAX_MESSAGE = 1000  # characters: a message quoting a huge value keeps its start and its end


def one_line(message: object, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line, at most about ``limit`` characters (the middle of a longer one is cut)."""
    text = " ".join(str(message).split())
    if len(text) <= limit:
        return text
    keep = limit // 2 - 20
    return f"{text[:keep]} ...({len(text) - 2 * keep} characters cut)... {text[-keep:]}"


class NluCiError(Exception):
    """Base class; ``str(err)`` is the one-line message shown to people."""

    exit_code = EXIT_RUNTIME
    kind = "runtime"

    def __init__(self, message: str):
        super().__init__(one_line(message))  # always one line, never megabytes


class ConfigError(NluCiError):
    """Invalid settings, nlu_config.yml, policy.yml, must_pass.yml, or command-line usage."""

    exit_code = EXIT_USAGE
    kind = "config"


class DataError(NluCiError):
    """Training or test data that cannot be used (missing, malformed, too small, bad offsets)."""

    exit_code = EXIT_USAGE
    kind = "data"


class RuntimeFailure(NluCiError):
    """Something went wrong while running: disk, network, training, a crashed component."""

    exit_code = EXIT_RUNTIME
    kind = "runtime"


class StoreError(RuntimeFailure):
    """The model store (PVC) cannot be read or written, or a model in it is damaged."""

    kind = "store"


class PlatformError(RuntimeFailure):
    """The Rasa Platform answered with an error, malformed data, or not at all."""

    kind = "platform"


class Terminated(RuntimeFailure):
    """SIGTERM/SIGINT arrived (Kubernetes stops pods this way)."""

    kind = "terminated"


class LockedError(NluCiError):
    """Another run holds the store lock. For ``run`` not a failure: the run ends with outcome ``locked``
    (exit 0, the CronJob is not retried in vain). A command a person typed (``rollback``, ``train``) that
    did nothing because of it exits 1."""

    exit_code = EXIT_RUNTIME
    kind = "locked"
