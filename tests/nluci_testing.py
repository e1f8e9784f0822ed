"""Kept only for test files that still import it: the shared helpers live in support.data (tests/support).
Remove once nothing imports this module."""
from support.data import (  # noqa: F401
    CONFIG,
    FAST_CONFIG,
    ROOT,
    SAMPLE,
    CliResult,
    cli_env,
    held_out,
    load_sample,
    run_cli,
    shuffled_train_labels,
    write_data,
)
