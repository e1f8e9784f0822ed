"""Each output channel is whole and reads the typed report: Slack does not import the Prometheus channel, the
views every channel shares are written once (``report/views.py``), ``--strict-metrics`` is decided in one place."""
from __future__ import annotations

import re

from test_structure import MODULES, imports_of


def test_slack_does_not_import_prometheus():
    assert not any(m.startswith("nlu_ci.outputs.prometheus") for m in imports_of("nlu_ci.outputs.slack"))


def test_the_channels_read_the_typed_report():
    for channel in ("nlu_ci.outputs.slack", "nlu_ci.outputs.prometheus.gauges", "nlu_ci.outputs.kubernetes_event",
                    "nlu_ci.review.page", "nlu_ci.report.markdown", "nlu_ci.report.document"):
        assert "nlu_ci.report.model" in imports_of(channel), channel
        assert "report.get(" not in MODULES[channel].read_text(), channel


def test_shared_views_are_written_once():
    pattern = re.compile(r"^def (failed_checks|mcnemar_p_value|_section|_f)\(", re.M)
    readers = {name: path for name, path in MODULES.items()
               if name.startswith(("nlu_ci.outputs", "nlu_ci.report", "nlu_ci.review", "nlu_ci.kube"))}
    defined = {name: pattern.findall(path.read_text()) for name, path in readers.items() if pattern.search(path.read_text())}
    assert defined == {"nlu_ci.report.views": ["failed_checks", "mcnemar_p_value"]}


def test_strict_metrics_is_decided_once():
    hits = {name for name, path in MODULES.items() if re.search(r"strict and not", path.read_text())}
    assert hits == {"nlu_ci.outputs.prometheus.push"}
