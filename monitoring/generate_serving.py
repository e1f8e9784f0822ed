"""The serving part of the generated monitoring (imported by generate.py): alert rules and the dashboard's row.

Series (docs/serving-monitoring.md): ``nlu-ci serve`` exports ``nlu_ci_serving_*`` (one pod serves one project;
``nlu_ci_serving_model_info{project, model}`` names what it serves), ``nlu-ci serve-models`` exports
``nlu_ci_model_server_*`` (``nlu_ci_model_server_active_model_info{project, model}``: what ACTIVE names, read at
scrape time), the nightly job may push ``nlu_ci_active_model_info{project, model}`` (job nlu_ci). The pods are
scraped by the PodMonitor of k8s/components/serving-monitoring.

The ``serve`` counters carry no project label: ``BY_PROJECT`` joins them with the pod's info metric on the
scrape target (``job``, ``instance``), so that every alert and panel is per project.
"""
from __future__ import annotations

SERVED_DIFFERS_MINUTES = 15   # a pull every 10 s: minutes of a different model are a broken pull, not a swap
NO_PULL_MINUTES = 10
MAX_5XX_SHARE = 0.05          # of /parse answers over 5 minutes
MAX_P99_SECONDS = 1.0         # /parse latency
LOW_CONFIDENCE_FACTOR = 2.0   # the last hour's low-confidence share this many times its 7-day level ...
LOW_CONFIDENCE_MARGIN = 0.05  # ... and this much above it (absolute), on at least MIN_MESSAGES messages
MIN_MESSAGES = 100

# one series per (scrape target, project): the pod's project, to join the serve counters with
POD_PROJECT = "group by (job, instance, project) (nlu_ci_serving_model_info)"
ACTIVE = ("max by (namespace, project, model) (nlu_ci_model_server_active_model_info) or on (namespace, project) "
          'max by (namespace, project, model) (nlu_ci_active_model_info{job="nlu_ci"})')
SHARE_1H = "project:nlu_ci_serving_low_confidence:ratio_rate1h"
MESSAGES_1H = "project:nlu_ci_serving_messages:increase1h"


def by_project(expr: str, by: str = "namespace, project") -> str:
    """``sum by (<by>) (<expr> * <the pod's project>)``: a per-pod series of ``serve`` summed per project."""
    return f"sum by ({by}) ({expr} * on (job, instance) group_left (project) {POD_PROJECT})"


def _alert(name, expr, for_, severity, summary, description, runbook) -> dict:
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"{runbook}#{name.lower()}"}}


def rules(runbook: str, served_differs_minutes: int = SERVED_DIFFERS_MINUTES, no_pull_minutes: int = NO_PULL_MINUTES,
          max_5xx_share: float = MAX_5XX_SHARE, max_p99_seconds: float = MAX_P99_SECONDS,
          low_confidence_factor: float = LOW_CONFIDENCE_FACTOR) -> dict:
    """The rule group ``nlu-ci-serving``: two recording rules (the low-confidence level, kept 7 days by
    Prometheus itself) and the alerts."""
    low = by_project("increase(nlu_ci_serving_low_confidence_messages_total[1h])")
    messages = by_project("increase(nlu_ci_serving_intent_confidence_count[1h])")
    requests = by_project("rate(nlu_ci_serving_parse_requests_total[5m])")
    errors = by_project('rate(nlu_ci_serving_parse_requests_total{code=~"5.."}[5m])')
    buckets = by_project("rate(nlu_ci_serving_parse_duration_seconds_bucket[5m])", "namespace, project, le")
    week = f"avg_over_time({SHARE_1H}[7d])"
    pod = "{{ with $labels.pod }}{{ . }}{{ else }}{{ $labels.instance }}{{ end }}"
    records = [
        {"record": MESSAGES_1H, "expr": messages},
        {"record": SHARE_1H, "expr": f"{low} / {messages}"},
    ]
    alerts = [
        _alert("NluCiServedModelNotActive",
               f"(nlu_ci_serving_model_info == 1 unless on (namespace, project, model) ({ACTIVE})) "
               f"and on (namespace, project) ({ACTIVE})", f"{served_differs_minutes}m", "critical",
               f"nlu-ci {{{{ $labels.project }}}}: {pod} serves {{{{ $labels.model }}}}, not the active model",
               f"For {served_differs_minutes} minutes the rasa-nlu pod {pod} has served {{{{ $labels.model }}}} "
               "while ACTIVE of project {{ $labels.project }} names another model (as the model server reads it, "
               "else as the job pushed it): its pulls fail or it cannot load the model. Users get the old "
               "model; the pod's log and nlu_ci_serving_model_pulls_total say why.", runbook),
        _alert("NluCiServingNoGoodPull",
               f"time() - nlu_ci_serving_last_good_pull_timestamp_seconds > {no_pull_minutes} * 60", "2m", "warning",
               f"nlu-ci: {pod} has not pulled its model for {{{{ $value | humanizeDuration }}}}",
               f"The rasa-nlu pod {pod} has had no good pull of the model URL for more than {no_pull_minutes} "
               "minutes (a pull that answered the active model or 'not modified'): the model server is down or "
               "refuses (503 for a damaged active model), or the network policy blocks it. It keeps serving "
               "its model, but a promotion or a rollback will not reach it.", runbook),
        _alert("NluCiServingErrors", f"{errors} / {requests} > {max_5xx_share}", "10m", "critical",
               "nlu-ci {{ $labels.project }}: {{ $value | humanizePercentage }} of /parse requests fail",
               f"More than {max_5xx_share:.0%} of the /parse answers of project {{{{ $labels.project }}}} were "
               "5xx over 5 minutes, for 10 minutes. Look at the rasa-nlu pods' logs (a model that fails on "
               "some input, memory).", runbook),
        _alert("NluCiServingSlow", f"histogram_quantile(0.99, {buckets}) > {max_p99_seconds}", "10m", "warning",
               "nlu-ci {{ $labels.project }}: /parse p99 latency {{ $value | humanizeDuration }}",
               f"The 99th percentile of /parse latency of project {{{{ $labels.project }}}} has been above "
               f"{max_p99_seconds:g} s for 10 minutes (CPU limits, too few replicas, a larger model).", runbook),
        _alert("NluCiLowConfidenceRising",
               f"{SHARE_1H} > {low_confidence_factor} * {week} "
               f"and {SHARE_1H} - {week} > {LOW_CONFIDENCE_MARGIN} and {MESSAGES_1H} >= {MIN_MESSAGES}", "30m",
               "warning",
               "nlu-ci {{ $labels.project }}: {{ $value | humanizePercentage }} of messages below the fallback "
               "threshold",
               f"In the last hour the share of messages of project {{{{ $labels.project }}}} below the fallback "
               f"threshold was more than {low_confidence_factor:g} times its 7-day level (and "
               f"{LOW_CONFIDENCE_MARGIN:.0%} above it): users ask what the model was not trained for (a new "
               "campaign, a new channel), or the new model is less sure. Annotate those messages (nlu-ci inbox).",
               runbook),
        _alert("NluCiModelServerFailing",
               'sum by (namespace, job, instance) '
               '(rate(nlu_ci_model_server_requests_total{route="models", code=~"5.."}[5m])) > 0', "10m", "critical",
               "nlu-ci: the model server {{ $labels.instance }} cannot serve an active model",
               "For 10 minutes nlu-ci serve-models has answered pulls with 5xx: the active model is damaged "
               "(checksums) or the store cannot be read. rasa-nlu pods keep their model; promotions stop "
               "reaching them. Its log names the model and the file.", runbook),
    ]
    return {"name": "nlu-ci-serving", "rules": records + alerts}


# ---------------------------------------------------------------------------------------------- dashboard row

PROJECT = 'project=~"$project"'


def panels(panel, target, thresholds, y: int, first_id: int) -> list[dict]:
    """The row ``Serving`` at height ``y`` (``panel``/``target``/``thresholds``: generate.py's helpers)."""
    line = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "none"}}
    stat = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background", "graphMode": "none", "textMode": "auto"}
    pod = f"({POD_PROJECT.replace('(nlu_ci_serving_model_info)', f'(nlu_ci_serving_model_info{{{PROJECT}}})')})"

    def per_project(expr: str, by: str = "project") -> str:
        return f"sum by ({by}) ({expr} * on (job, instance) group_left (project) {pod})"

    i = iter(range(first_id, first_id + 100))
    row = {"id": next(i), "type": "row", "title": "Serving", "collapsed": False, "panels": [],
           "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}
    y += 1
    out = [row,
           panel(next(i), "table", "Served model per pod",
                 "What each rasa-nlu pod serves (nlu_ci_serving_model_info) next to what ACTIVE names (the model "
                 "server reads it at scrape time): a row whose models differ for long is NluCiServedModelNotActive.",
                 (0, y, 12, 6),
                 [target(f"max by (project, model, pod, instance) (nlu_ci_serving_model_info{{{PROJECT}}})",
                         "", "A", instant=True),
                  target(f"max by (project, model) (nlu_ci_model_server_active_model_info{{{PROJECT}}})", "", "B",
                         instant=True)]),
           panel(next(i), "stat", "Time since the last good pull",
                 "Per rasa-nlu pod; NluCiServingNoGoodPull above 10 minutes.", (12, y, 12, 6),
                 [target(f"time() - ({per_project('nlu_ci_serving_last_good_pull_timestamp_seconds', 'project, instance')})",
                         "{{project}} {{instance}}")],
                 unit="s", thresholds=thresholds((None, "green"), (NO_PULL_MINUTES * 60, "red")), **stat),
           panel(next(i), "timeseries", "/parse requests by status",
                 "Requests per second per HTTP status code, all pods of the project.", (0, y + 6, 8, 8),
                 [target(per_project("rate(nlu_ci_serving_parse_requests_total[5m])", "project, code"),
                         "{{project}} {{code}}")], unit="reqps", **line),
           panel(next(i), "timeseries", "/parse latency",
                 "p50 and p99 of the /parse latency over 5 minutes.", (8, y + 6, 8, 8),
                 [target(f"histogram_quantile(0.5, {per_project('rate(nlu_ci_serving_parse_duration_seconds_bucket[5m])', 'project, le')})",
                         "{{project}} p50"),
                  target(f"histogram_quantile(0.99, {per_project('rate(nlu_ci_serving_parse_duration_seconds_bucket[5m])', 'project, le')})",
                         "{{project}} p99", "B")], unit="s", **line),
           panel(next(i), "timeseries", "Messages below the fallback threshold",
                 "Share of parsed messages whose top intent confidence is below the fallback threshold (1 h).",
                 (16, y + 6, 8, 8),
                 [target(f"{per_project('increase(nlu_ci_serving_low_confidence_messages_total[1h])')} / "
                         f"{per_project('increase(nlu_ci_serving_intent_confidence_count[1h])')}",
                         "{{project}} low confidence")], unit="percentunit", min=0, max=1, **line),
           panel(next(i), "timeseries", "Predicted intents",
                 "Messages per second by predicted intent (intents the model knows only).", (0, y + 14, 12, 8),
                 [target(per_project("rate(nlu_ci_serving_intent_predictions_total[5m])", "project, intent"),
                         "{{project}} {{intent}}")], unit="reqps", **line),
           panel(next(i), "timeseries", "Model pulls and model server answers",
                 "Pulls of the rasa-nlu pods by result; the model server's answers by route and status.",
                 (12, y + 14, 12, 8),
                 [target(per_project("rate(nlu_ci_serving_model_pulls_total[5m])", "project, result"),
                         "{{project}} pull {{result}}"),
                  target("sum by (route, code) (rate(nlu_ci_model_server_requests_total[5m]))",
                         "model server {{route}} {{code}}", "B")], unit="reqps", **line),
           ]
    return out
