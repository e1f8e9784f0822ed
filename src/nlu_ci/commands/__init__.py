"""The CLI's commands, one module each: ``NAME``, ``HELP``, ``SETTINGS`` (the settings it takes as flags),
``add_arguments(parser)`` and ``main(settings, args) -> Result``. They return data; only ``cli`` prints.

Adding a command: one module and one line in ``COMMANDS``.
"""
from nlu_ci.commands import check, compare, evaluate, report, rollback, run, status, train, validate
from nlu_ci.commands.result import Result

COMMANDS = [
    run,
    status,
    rollback,
    evaluate,
    compare,
    train,
    check,
    report,
    validate,
]

__all__ = ["COMMANDS", "Result"]
