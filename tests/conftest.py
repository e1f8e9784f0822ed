"""Registers the shared fixtures (tests/support/fixtures.py) for every suite."""
from support.fixtures import *  # noqa: F401,F403
