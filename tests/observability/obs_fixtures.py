"""Fixtures of the observability tests, imported by the test modules that use them (not a conftest.py: other
suites do ``from conftest import ...``, which a second conftest module would shadow)."""
from __future__ import annotations

from pathlib import Path

import pytest
from obs_servers import (
    MISSING,
    PROMETHEUS_BIN,
    PUSHGATEWAY_BIN,
    Prometheus,
    Pushgateway,
    SlackReceiver,
)

__all__ = ["pushgateway", "prometheus_stack", "slack"]


@pytest.fixture
def pushgateway(tmp_path: Path):
    if PUSHGATEWAY_BIN is None:
        pytest.skip(f"prometheus-pushgateway {MISSING}")
    server = Pushgateway(tmp_path / "pushgateway")
    yield server
    server.stop()


@pytest.fixture
def slack():
    receiver = SlackReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def prometheus_stack(tmp_path: Path):
    """(pushgateway, prometheus): Prometheus scraping the Pushgateway every second, alert rules loaded."""
    if PUSHGATEWAY_BIN is None or PROMETHEUS_BIN is None:
        pytest.skip(f"prometheus / prometheus-pushgateway {MISSING}")
    gateway = Pushgateway(tmp_path / "pushgateway")
    try:
        prom = Prometheus(tmp_path / "prometheus", gateway.port)
    except Exception:
        gateway.stop()
        raise
    yield gateway, prom
    prom.stop()
    gateway.stop()
