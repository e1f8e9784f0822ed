"""Kept only for test modules that still import it: the servers live in support.servers and
support.slack_fake. Remove once nothing imports this module."""
from support.servers import (  # noqa: F401  # noqa: F401
    MISSING,
    MONITORING,
    PROMETHEUS_BIN,
    PROMTOOL_BIN,
    PUSHGATEWAY_BIN,
    Prometheus,
    Pushgateway,
)
from support.slack_fake import SlackReceiver  # noqa: F401
