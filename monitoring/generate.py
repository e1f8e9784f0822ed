#!/usr/bin/env python3
"""Generate the Grafana dashboard and the Prometheus alert rules of nlu-ci (the reviewed files beside this script).

    python monitoring/generate.py                       # rewrite nlu-ci-dashboard.json and alerts.rules.yml
    python monitoring/generate.py --check               # exit 1 if the committed files are not what this writes
    python monitoring/generate.py --no-promotion-days 30 --max-f1-drop 0.05 --out-dir /tmp/mon

Every query reads the series that ``nlu_ci.outputs.prometheus`` pushes (job ``nlu_ci``, grouping label ``project``);
Prometheus must scrape the Pushgateway with ``honor_labels: true``. The row "Serving" and the rule group
``nlu-ci-serving`` read what ``nlu-ci serve`` and ``serve-models`` export (generate_serving.py). The panel queries are tested against a real
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
sys.path.insert(0, str(HERE))
import generate_serving as serving  # noqa: E402 (beside this script: the serving rules and dashboard row)

DASHBOARD_FILE = "nlu-ci-dashboard.json"
RULES_FILE = "alerts.rules.yml"
DASHBOARD_UID = "nlu-ci"

# alert defaults (the flags change them)
SUCCESS_HOURS = 26          # the job runs nightly: one missed night plus two hours of slack
NO_PROMOTION_DAYS = 14
MAX_F1_DROP = 0.10          # candidate intent F1 this far below the active one: the new data is suspect
RETRY_HOURS = 3             # = the CronJob's activeDeadlineSeconds: a Job's retries all end within it
PUSHGATEWAY_JOB = "pushgateway"  # Prometheus' scrape job of the Pushgateway (ServiceMonitor: the Service name)
RUNBOOK = "docs/runbook.md"      # --runbook-base https://<git host>/<repo>/blob/main/docs/runbook.md

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
               (0, 28, 12, 6),
               [_target(f"max by (project, check) (nlu_ci_gate_check_passed{{{SEL}}})", "", instant=True)],
               mappings=[{"type": "value", "options": {"0": {"text": "FAILED", "color": "red"},
                                                       "1": {"text": "passed", "color": "green"}}}]),
        _panel(40, "table", "Active model: held-out F1 per intent",
               "The model active after the newest run (the candidate when promoted) and its F1 per intent on "
               "its own held-out test set: the intents to annotate next are at the bottom.", (12, 28, 12, 6),
               [_target(f"max by (project, model) (nlu_ci_active_model_info{{{SEL}}})", "", instant=True),
                _target(f"max by (project, intent) (nlu_ci_active_intent_f1{{{SEL}}})", "", "B", instant=True)],
               unit="percentunit"),
        _panel(41, "timeseries", "Fallback: coverage at the target precision",
               "Share of in-scope held-out messages each model answers at the lowest threshold whose answers reach "
               "the policy's fallback.target_precision (A), and that threshold (B) (docs/policy.md).", (0, 34, 12, 6),
               [_target(f"max by (project, model) (nlu_ci_fallback_coverage{{{SEL}}})", "{{project}} {{model}}"),
                _target(f"max by (project, model) (nlu_ci_fallback_recommended_threshold{{{SEL}}})",
                        "{{project}} {{model}} threshold", "B")],
               unit="percentunit", min=0, max=1, **line),
        _panel(42, "timeseries", "Out-of-scope messages answered",
               "Out-of-scope messages (intent out_of_scope in the test data, --out-of-scope file) each model answers "
               "at the policy's fallback threshold: the assistant should have fallen back.", (12, 34, 12, 6),
               [_target(f"max by (project, model) (nlu_ci_out_of_scope_answered{{{SEL}}})", "{{project}} {{model}}")],
               unit="short", min=0, custom=stepped, **line),
        _panel(43, "timeseries", "Live agreement: candidate vs active on production messages",
               "With --messages (docs/inbox.md): the share of the newest unique production messages on which the "
               "candidate and the active model predict different intents, how many were compared, and the inbox's "
               "counts (messages read, already training examples, unique, left out, listed; no data without "
               "--messages).", (0, 40, 24, 6),
               [_target(f"max by (project) (nlu_ci_live_disagreement{{{SEL}}})", "{{project}} disagreement"),
                _target(f"max by (project) (nlu_ci_live_messages{{{SEL}}})", "{{project}} messages compared", "B"),
                _target(f"max by (project, kind) (nlu_ci_inbox_messages{{{SEL}}})", "{{project}} inbox {{kind}}", "C")]),
    ]
    panels += serving.panels(_panel, _target, _thresholds, y=46, first_id=13)
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
        "annotations": {"list": [{
            "name": "Active model changed", "datasource": DS, "enable": True, "iconColor": "purple",
            # a new (project, model) series of the job's active-model info: a promotion (or a rollback's push)
            "expr": f"max by (project, model) (nlu_ci_active_model_info{{{SEL}}}) unless max by (project, model) "
                    f"(nlu_ci_active_model_info{{{SEL}}} offset 10m)",
            "step": "5m", "titleFormat": "{{project}}: {{model}} active", "textFormat": "active model changed",
            "tagKeys": "project,model"}]},
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


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str,
           runbook: str) -> dict:
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{runbook}#{name.lower()}"}}


def rules(no_promotion_days: int = NO_PROMOTION_DAYS, max_f1_drop: float = MAX_F1_DROP,
          success_hours: int = SUCCESS_HOURS, retry_hours: int = RETRY_HOURS,
          pushgateway_job: str = PUSHGATEWAY_JOB, projects: tuple[str, ...] = (),
          runbook: str = RUNBOOK, serving_options: dict | None = None) -> dict:
    """Plain Prometheus rule groups (the PrometheusRule's ``spec`` is the same document).

    Joins of two nlu-ci series match on every label but the one that differs (``ignoring (model)``),
    so that the same project pushed to several Pushgateways (instance/namespace differ) stays one-to-one.
    ``projects``: with names, the no-metrics alert watches each one (``absent`` keeps the ``project``
    label); without, it fires only when no nlu-ci series at all exists."""
    job = 'job="nlu_ci"'
    if projects:
        absent = " or ".join(f'absent(nlu_ci_last_run_timestamp_seconds{{{job}, project="{p}"}})'
                             for p in projects)
    else:
        absent = f"absent(nlu_ci_last_run_timestamp_seconds{{{job}}})"
    gateway = f'job="{pushgateway_job}"'
    alerts = [
        _alert("NluCiNoSuccessfulRun",
               f"time() - nlu_ci_last_success_timestamp_seconds{{{job}}} > {success_hours} * 3600", "10m",
               "critical", "nlu-ci {{ $labels.project }}: no successful run for {{ $value | humanizeDuration }}",
               f"No nlu-ci run of project {{{{ $labels.project }}}} completed in the last {success_hours} h "
               "(the job runs nightly). Look at the CronJob's last Jobs and the run reports in the model store.",
               runbook),
        _alert("NluCiNeverSucceeded",
               f"nlu_ci_last_run_timestamp_seconds{{{job}}} "
               f"unless ignoring () nlu_ci_last_success_timestamp_seconds{{{job}}}", f"{success_hours}h",
               "critical", "nlu-ci {{ $labels.project }}: runs but has never completed",
               f"Project {{{{ $labels.project }}}} has pushed metrics for {success_hours} h without a single "
               "completed run.", runbook),
        # "for" = the Job's retry window (activeDeadlineSeconds): a failed attempt that a retry of the
        # same Job turns into a success never pages; the RunFailed Event on the Job is immediate
        _alert("NluCiLastRunFailed", f'nlu_ci_run_outcome{{{job}, outcome="failed"}} == 1', f"{retry_hours}h",
               "warning", "nlu-ci {{ $labels.project }}: the last run failed",
               "The newest run of project {{ $labels.project }} ended with outcome failed and no retry of "
               f"the Job succeeded within {retry_hours} h; the active model keeps serving. The run report "
               "names the error.", runbook),
        _alert("NluCiNoPromotion",
               f"time() - nlu_ci_last_promotion_timestamp_seconds{{{job}}} > {no_promotion_days} * 86400", "1h",
               "info", "nlu-ci {{ $labels.project }}: no promotion for {{ $value | humanizeDuration }}",
               f"No candidate was promoted in {no_promotion_days} days: the gate rejects every new model, "
               "or the data has stopped changing.", runbook),
        _alert("NluCiCandidateFarBelowActive",
               f'nlu_ci_intent_f1{{{job}, model="active"}} '
               f'- ignoring (model) nlu_ci_intent_f1{{{job}, model="candidate"}} > {max_f1_drop}', "5m",
               "warning", "nlu-ci {{ $labels.project }}: candidate intent F1 {{ $value | printf \"%.2f\" }} "
               "below the active model",
               f"The newest candidate scored more than {max_f1_drop} intent F1 below the active model on the "
               "same test set: new training data is probably broken (mislabelled or truncated). The gate kept "
               "the active model.", runbook),
        # nothing pushed at all: the timestamp alerts above need a series to compare with
        _alert("NluCiNoMetrics", absent, f"{success_hours}h", "critical",
               f"nlu-ci: no metrics for {success_hours} h" + "{{ with $labels.project }} (project {{ . }}){{ end }}",
               f"Prometheus has had no nlu-ci series (job nlu_ci) for {success_hours} h: the job never "
               "pushed (pod stuck in ContainerCreating on a missing Secret, image pull error, OOM-killed "
               "before the end), or the Pushgateway lost its series (restarted without persistence), or "
               "Prometheus does not scrape it.", runbook),
        _alert("NluCiPushgatewayDown", f"up{{{gateway}}} == 0 or absent(up{{{gateway}}})", "15m", "warning",
               "nlu-ci: Pushgateway down or not scraped{{ with $labels.instance }} ({{ . }}){{ end }}",
               f"Prometheus cannot scrape the Pushgateway (scrape job {pushgateway_job}), or has no such "
               "target: the next runs' metrics are lost or invisible (a ServiceMonitor without the release "
               "label of your Prometheus is never scraped).", runbook),
    ]
    return {"groups": [{"name": "nlu-ci", "rules": alerts}, serving.rules(runbook, **(serving_options or {}))]}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def render(no_promotion_days: int = NO_PROMOTION_DAYS, max_f1_drop: float = MAX_F1_DROP,
           success_hours: int = SUCCESS_HOURS, **rule_options) -> dict[str, str]:
    """File name -> text of every generated file (``rule_options``: the other keywords of ``rules``)."""
    header = ("# Generated by monitoring/generate.py; edit the script, then run it (tests check they agree).\n"
              f"# Thresholds: no success {success_hours} h, no promotion {no_promotion_days} d, "
              f"F1 drop {max_f1_drop}.\n")
    return {
        DASHBOARD_FILE: json.dumps(dashboard(no_promotion_days, success_hours), indent=2) + "\n",
        RULES_FILE: header + yaml.dump(rules(no_promotion_days, max_f1_drop, success_hours, **rule_options),
                                       Dumper=_Dumper, sort_keys=False, width=1000),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where to write (default: beside this script)")
    parser.add_argument("--no-promotion-days", type=int, default=NO_PROMOTION_DAYS)
    parser.add_argument("--max-f1-drop", type=float, default=MAX_F1_DROP)
    parser.add_argument("--success-hours", type=int, default=SUCCESS_HOURS)
    parser.add_argument("--retry-hours", type=int, default=RETRY_HOURS,
                        help="a failed run pages only if no retry succeeded within this (the Job's deadline)")
    parser.add_argument("--pushgateway-job", default=PUSHGATEWAY_JOB, help="Prometheus' scrape job of the gateway")
    parser.add_argument("--project", action="append", default=[], dest="projects",
                        help="watch this project for missing metrics (repeatable; default: any project)")
    parser.add_argument("--runbook-base", default=RUNBOOK, help="runbook_url of every alert = this + #<alert>")
    parser.add_argument("--served-differs-minutes", type=int, default=serving.SERVED_DIFFERS_MINUTES,
                        help="a pod serving another model than ACTIVE this long pages")
    parser.add_argument("--no-pull-minutes", type=int, default=serving.NO_PULL_MINUTES)
    parser.add_argument("--max-5xx-share", type=float, default=serving.MAX_5XX_SHARE)
    parser.add_argument("--max-p99-seconds", type=float, default=serving.MAX_P99_SECONDS)
    parser.add_argument("--low-confidence-factor", type=float, default=serving.LOW_CONFIDENCE_FACTOR,
                        help="the last hour's low-confidence share this many times its 7-day level warns")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    if (args.no_promotion_days < 1 or args.success_hours < 1 or args.retry_hours < 1
            or not 0 < args.max_f1_drop < 1):
        parser.error("--no-promotion-days, --success-hours and --retry-hours must be >= 1, --max-f1-drop in (0, 1)")
    if (args.served_differs_minutes < 1 or args.no_pull_minutes < 1 or not 0 < args.max_5xx_share < 1
            or args.max_p99_seconds <= 0 or args.low_confidence_factor <= 1):
        parser.error("--served-differs-minutes and --no-pull-minutes must be >= 1, --max-5xx-share in (0, 1), "
                     "--max-p99-seconds > 0, --low-confidence-factor > 1")
    serving_options = {"served_differs_minutes": args.served_differs_minutes, "no_pull_minutes": args.no_pull_minutes,
                       "max_5xx_share": args.max_5xx_share, "max_p99_seconds": args.max_p99_seconds,
                       "low_confidence_factor": args.low_confidence_factor}
    options = {"retry_hours": args.retry_hours, "pushgateway_job": args.pushgateway_job,
               "projects": tuple(args.projects), "runbook": args.runbook_base, "serving_options": serving_options}
    stale = []
    for name, text in render(args.no_promotion_days, args.max_f1_drop, args.success_hours, **options).items():
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
