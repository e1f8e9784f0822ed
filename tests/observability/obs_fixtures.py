"""Kept only for test modules that still star-import it: the fixtures live in support.fixtures and are
registered for every suite by tests/conftest.py. Remove once nothing imports this module."""
from support.fixtures import prometheus_stack, pushgateway, slack  # noqa: F401

__all__ = ["prometheus_stack", "pushgateway", "slack"]
