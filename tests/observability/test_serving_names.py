"""The serving alerts and dashboard panels read only series that ``nlu-ci serve`` and ``serve-models`` really
export: every ``nlu_ci_serving_*`` / ``nlu_ci_model_server_*`` name in the rules and the dashboard is a sample
name of the exporters' own registries (a renamed metric would leave an alert silent for ever)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nlu_ci.serving.parse_metrics import ServingMetrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
NAME = re.compile(r"(?<![:\w])nlu_ci_serving_[a-z_]+")  # not inside a recording rule's name


def exported() -> set[str]:
    text = generate_latest(ServingMetrics().registry).decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
    return names


def test_every_serving_series_the_rules_and_dashboard_read_is_exported():
    rules = (MONITORING / "alerts.rules.yml").read_text()
    dashboard = json.dumps(json.loads((MONITORING / "nlu-ci-dashboard.json").read_text()))
    recorded = set(re.findall(r"record:\s*(\S+)", rules))
    read = set(NAME.findall(rules)) | set(NAME.findall(dashboard))
    missing = sorted(n for n in read - recorded if n not in exported())
    assert not missing, f"rules/dashboard read series nlu-ci serve does not export: {missing}"
