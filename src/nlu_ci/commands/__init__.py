"""The CLI's commands, one module each: ``NAME``, ``HELP``, ``SETTINGS`` (the settings it takes as flags),
``add_arguments(parser)`` and ``main(settings, args) -> Result``. They return data; only ``cli`` prints.

Adding a command: one module and one line in ``COMMANDS`` (plus its name in the import).
"""
from nlu_ci.commands import (  # one name a line: additions do not collide
    check,
    compare,
    cv_fold,
    evaluate,
    inbox,
    release,
    report,
    rollback,
    run,
    serve,
    serve_models,
    status,
    train,
    validate,
)
from nlu_ci.commands.result import Result

COMMANDS = [
    run,
    status,
    rollback,
    release,
    evaluate,
    compare,
    train,
    check,
    report,
    validate,
    serve_models,
    serve,
    inbox,
    cv_fold,
]

__all__ = ["COMMANDS", "Result"]
