from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from obs_servers import (  # noqa: E402
    MISSING,
    PROMETHEUS_BIN,
    PUSHGATEWAY_BIN,
    Prometheus,
    Pushgateway,
    SlackReceiver,
)

needs_pushgateway = pytest.mark.skipif(PUSHGATEWAY_BIN is None, reason=f"prometheus-pushgateway {MISSING}")
needs_prometheus = pytest.mark.skipif(PROMETHEUS_BIN is None or PUSHGATEWAY_BIN is None,
                                      reason=f"prometheus / prometheus-pushgateway {MISSING}")


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
