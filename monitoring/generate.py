#!/usr/bin/env python3
"""Generate the Grafana dashboard and the Prometheus alert rules of nlu-ci (the reviewed files beside this script).

    python monitoring/generate.py                       # rewrite nlu-ci-dashboard.json and alerts.rules.yml
    python monitoring/generate.py --check               # exit 1 if the committed files are not what this writes
    python monitoring/generate.py --no-promotion-days 30 --max-f1-drop 0.05 --out-dir /tmp/mon

Every query reads the series that ``nlu_ci.metrics`` pushes (job ``nlu_ci``, grouping label ``project``);
Prometheus must scrape the Pushgateway with ``honor_labels: true``. The panel queries are tested against a real
Prometheus (tests/observability/test_e2e_prometheus.py), the rules with ``promtool test rules``
(monitoring/alerts.test.yml). Plain Python, no dependency: the output is the reviewable artefact.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD_FILE = "nlu-ci-dashboard.json"
RULES_FILE = "alerts.rules.yml"
DASHBOARD_UID = "nlu-ci"

# alert defaults (the flags change them)
SUCCESS_HOURS = 26          # the job runs nightly: one missed night plus two hours of slack
NO_PROMOTION_DAYS = 14
MAX_F1_DROP = 0.10          # candidate intent F1 this far below the active one: the new data is suspect

SEL = 'job="nlu_ci", project=~"$project"'
DS = {"type": "prometheus", "uid": "${datasource}"}


def _target(expr: str, legend: str, ref: str = "A", instant: bool = False) -> dict:
    target = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": not instant}
    if instant:
        target["instant"] = True
        target["format"] = "table"
    return target


def _panel(pid: int, kind: str, title: str, description: str, grid: tuple[int, int, int, int],
           targets: list[dict], unit: str = "short", **options) -> dict:
    x, y, w, h = grid
    panel = {
        "id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    for key, value in options.items():
        if key in ("min", "max", "thresholds", "mappings", "decimals", "custom"):
            panel["fieldConfig"]["defaults"][key] = value
        else:
            panel["options"][key] = value
    return panel


def _thresholds(*steps: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def dashboard(no_promotion_days: int = NO_PROMOTION_DAYS, success_hours: int = SUCCESS_HOURS) -> dict:
    """The Grafana dashboard (schemaVersion 39, importable as is; the sidecar ConfigMap holds the same JSON)."""
    stat = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background", "graphMode": "none", "textMode": "auto"}
    line = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "none"}}
    stepped = {"lineInterpolation": "stepAfter", "spanNulls": False, "showPoints": "always", "pointSize": 4}
    outcome_colors = {"promoted": "green", "rejected": "yellow", "skipped": "blue", "dry_run": "purple",
                      "locked": "orange", "failed": "red"}
    panels = [
        _panel(1, "stat", "Last run outcome",
               "Outcome of the newest run per project (nlu_ci_run_outcome == 1).", (0, 0, 6, 4),
               [_target(f"max by (project, outcome) (nlu_ci_run_outcome{{{SEL}}}) == 1",
                        "{{project}}: {{outcome}}", instant=True)],
               **dict(stat, textMode="name")),
        _panel(2, "stat", "Time since last successful run",
               f"A completed run (promoted, rejected, skipped, dry_run); alert after {success_hours} h.",
               (6, 0, 6, 4),
               [_target(f"time() - max by (project) (nlu_ci_last_success_timestamp_seconds{{{SEL}}})",
                        "{{project}}")],
               unit="s", thresholds=_thresholds((None, "green"), (success_hours * 3600, "red")), **stat),
        _panel(3, "stat", "Time since last promotion",
               f"A candidate replaced the active model; alert after {no_promotion_days} days.", (12, 0, 6, 4),
               [_target(f"time() - max by (project) (nlu_ci_last_promotion_timestamp_seconds{{{SEL}}})",
                        "{{project}}")],
               unit="s", thresholds=_thresholds((None, "green"), (no_promotion_days * 86400, "orange")), **stat),
        _panel(4, "stat", "Time since last run", "Any outcome, including failed and locked runs.", (18, 0, 6, 4),
               [_target(f"time() - max by (project) (nlu_ci_last_run_timestamp_seconds{{{SEL}}})",
                        "{{project}}")],
               unit="s", thresholds=_thresholds((None, "green"), (success_hours * 3600, "red")), **stat),
        _panel(5, "timeseries", "Intent F1: candidate vs active",
               "Weighted intent F1 of the new model and of the serving model on the same held-out test set.",
               (0, 4, 12, 8),
               [_target(f"max by (project, model) (nlu_ci_intent_f1{{{SEL}}})", "{{project}} {{model}}")],
               unit="percentunit", min=0, max=1, custom=stepped, **line),
        _panel(6, "timeseries", "Entity F1: candidate vs active",
               "Entity extraction F1 (absent when the data has no entities).", (12, 4, 12, 8),
               [_target(f"max by (project, model) (nlu_ci_entity_f1{{{SEL}}})", "{{project}} {{model}}")],
               unit="percentunit", min=0, max=1, custom=stepped, **line),
        _panel(7, "state-timeline", "Run outcomes over time",
               "Which outcome the newest run had, over time (one row per outcome).", (0, 12, 12, 8),
               [_target(f"max by (project, outcome) (nlu_ci_run_outcome{{{SEL}}}) == 1",
                        "{{project}} {{outcome}}")],
               mappings=[{"type": "value", "options": {"1": {"text": "this outcome"}}}],
               legend={"displayMode": "list", "placement": "bottom"}, showValue="never", mergeValues=True,
               rowHeight=0.8, custom={"fillOpacity": 80}),
        _panel(8, "timeseries", "Stage durations",
               "Seconds each stage of the newest run took, and the whole run.", (12, 12, 12, 8),
               [_target(f"max by (project, stage) (nlu_ci_stage_duration_seconds{{{SEL}}})",
                        "{{project}} {{stage}}"),
                _target(f"max by (project) (nlu_ci_run_duration_seconds{{{SEL}}})", "{{project}} total", "B")],
               unit="s", custom=stepped, **line),
        _panel(9, "timeseries", "Data size",
               "Training and held-out test examples of the newest run, and examples whose entity annotations "
               "were trimmed or dropped (README 'Training data').", (0, 20, 8, 8),
               [_target(f"max by (project) (nlu_ci_training_examples{{{SEL}}})", "{{project}} training"),
                _target(f"max by (project) (nlu_ci_test_examples{{{SEL}}})", "{{project}} test", "B"),
                _target(f"max by (project) (nlu_ci_data_repaired_examples{{{SEL}}})", "{{project}} repaired",
                        "C")],
               unit="short", custom=stepped, **line),
        _panel(10, "timeseries", "McNemar p-value (candidate vs active)",
               "Exact McNemar test on the paired test-set predictions; below the policy's alpha = significant.",
               (8, 20, 8, 8),
               [_target(f"max by (project) (nlu_ci_mcnemar_p_value{{{SEL}}})", "{{project}} p-value")],
               unit="short", min=0, max=1, custom=stepped,
               thresholds=_thresholds((None, "green"), (0.05, "text")), **line),
        _panel(11, "timeseries", "Failed gate checks",
               "Enabled promotion-gate checks that failed in the newest run (one series per check).",
               (16, 20, 8, 8),
               [_target(f"max by (project, check) (nlu_ci_gate_check_passed{{{SEL}}}) == 0",
                        "{{project}} {{check}}")],
               unit="short", min=0, custom=dict(stepped, drawStyle="points"), **line),
        _panel(12, "table", "Gate checks of the last run", "1 = passed, 0 = failed (enabled checks only).",
               (0, 28, 24, 6),
               [_target(f"max by (project, check) (nlu_ci_gate_check_passed{{{SEL}}})", "", instant=True)],
               mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red"},
                                                       "1": {"text": "passed", "color": "green"}}}]),
    ]
    for panel in panels:
        if panel["type"] == "state-timeline":
            panel["fieldConfig"]["overrides"] = [
                {"matcher": {"id": "byRegexp", "options": f".* {name}$"},
                 "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}]}
                for name, color in outcome_colors.items()]
    return {
        "uid": DASHBOARD_UID, "title": "nlu-ci: continuous training", "tags": ["nlu-ci", "rasa"],
        "description": "Nightly Rasa NLU retraining: model quality, promotions, failures (metrics from nlu_ci).",
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "5m",
        "time": {"from": "now-30d", "to": "now"}, "timezone": "utc",
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            {"name": "project", "label": "Project", "type": "query", "datasource": DS,
             "definition": 'label_values(nlu_ci_last_run_timestamp_seconds{job="nlu_ci"}, project)',
             "query": {"query": 'label_values(nlu_ci_last_run_timestamp_seconds{job="nlu_ci"}, project)',
                       "refId": "project"},
             "includeAll": True, "multi": True, "allValue": ".+", "current": {}, "refresh": 2, "sort": 1},
        ]},
        "panels": panels,
    }


def rules(no_promotion_days: int = NO_PROMOTION_DAYS, max_f1_drop: float = MAX_F1_DROP,
          success_hours: int = SUCCESS_HOURS) -> dict:
    """Plain Prometheus rule groups (the PrometheusRule's ``spec`` is the same document)."""
    job = 'job="nlu_ci"'
    return {"groups": [{
        "name": "nlu-ci",
        "rules": [
            {"alert": "NluCiNoSuccessfulRun",
             "expr": f"time() - nlu_ci_last_success_timestamp_seconds{{{job}}} > {success_hours} * 3600",
             "for": "10m",
             "labels": {"severity": "critical"},
             "annotations": {
                 "summary": "nlu-ci {{ $labels.project }}: no successful run for "
                            "{{ $value | humanizeDuration }}",
                 "description": f"No nlu-ci run of project {{{{ $labels.project }}}} completed in the last "
                                f"{success_hours} h (the job runs nightly). Look at the CronJob's last Jobs and "
                                "the run reports in the model store."}},
            {"alert": "NluCiNeverSucceeded",
             "expr": (f"nlu_ci_last_run_timestamp_seconds{{{job}}} "
                      f"unless on (job, project) nlu_ci_last_success_timestamp_seconds{{{job}}}"),
             "for": f"{success_hours}h",
             "labels": {"severity": "critical"},
             "annotations": {
                 "summary": "nlu-ci {{ $labels.project }}: runs but has never completed",
                 "description": f"Project {{{{ $labels.project }}}} has pushed metrics for {success_hours} h "
                                "without a single completed run."}},
            {"alert": "NluCiLastRunFailed",
             "expr": f'nlu_ci_run_outcome{{{job}, outcome="failed"}} == 1',
             "for": "5m",
             "labels": {"severity": "warning"},
             "annotations": {
                 "summary": "nlu-ci {{ $labels.project }}: the last run failed",
                 "description": "The newest run of project {{ $labels.project }} ended with outcome failed; "
                                "the active model keeps serving. The run report names the error."}},
            {"alert": "NluCiNoPromotion",
             "expr": (f"time() - nlu_ci_last_promotion_timestamp_seconds{{{job}}} "
                      f"> {no_promotion_days} * 86400"),
             "for": "1h",
             "labels": {"severity": "info"},
             "annotations": {
                 "summary": "nlu-ci {{ $labels.project }}: no promotion for {{ $value | humanizeDuration }}",
                 "description": f"No candidate was promoted in {no_promotion_days} days: the gate rejects every "
                                "new model, or the data has stopped changing."}},
            {"alert": "NluCiCandidateFarBelowActive",
             "expr": (f'nlu_ci_intent_f1{{{job}, model="active"}} '
                      f'- on (job, project) nlu_ci_intent_f1{{{job}, model="candidate"}} > {max_f1_drop}'),
             "for": "5m",
             "labels": {"severity": "warning"},
             "annotations": {
                 "summary": "nlu-ci {{ $labels.project }}: candidate intent F1 {{ $value | printf \"%.2f\" }} "
                            "below the active model",
                 "description": f"The newest candidate scored more than {max_f1_drop} intent F1 below the "
                                "active model on the same test set: new training data is probably broken "
                                "(mislabelled or truncated). The gate kept the active model."}},
        ],
    }]}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def render(no_promotion_days: int = NO_PROMOTION_DAYS, max_f1_drop: float = MAX_F1_DROP,
           success_hours: int = SUCCESS_HOURS) -> dict[str, str]:
    """File name -> text of every generated file."""
    header = ("# Generated by monitoring/generate.py; edit the script, then run it (tests check they agree).\n"
              f"# Thresholds: no success {success_hours} h, no promotion {no_promotion_days} d, "
              f"F1 drop {max_f1_drop}.\n")
    return {
        DASHBOARD_FILE: json.dumps(dashboard(no_promotion_days, success_hours), indent=2) + "\n",
        RULES_FILE: header + yaml.dump(rules(no_promotion_days, max_f1_drop, success_hours), Dumper=_Dumper,
                                       sort_keys=False, width=1000),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: beside this script)")
    parser.add_argument("--no-promotion-days", type=int, default=NO_PROMOTION_DAYS)
    parser.add_argument("--max-f1-drop", type=float, default=MAX_F1_DROP)
    parser.add_argument("--success-hours", type=int, default=SUCCESS_HOURS)
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    if args.no_promotion_days < 1 or args.success_hours < 1 or not 0 < args.max_f1_drop < 1:
        parser.error("--no-promotion-days and --success-hours must be >= 1, --max-f1-drop in (0, 1)")
    stale = []
    for name, text in render(args.no_promotion_days, args.max_f1_drop, args.success_hours).items():
        path = args.out_dir / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python monitoring/generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
