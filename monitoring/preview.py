"""A static preview of the Grafana dashboard: each panel's queries run against a real Prometheus, drawn as HTML + SVG.

Grafana is not packaged for this machine, so the tests cannot open the dashboard itself. This is the next best
thing a reviewer can look at: the dashboard JSON's own panels (type, title, gridPos, targets, legendFormat, unit),
their queries evaluated by Prometheus' HTTP API (``query_range`` for time series, an instant query for stat and
table panels) with the dashboard variables substituted, laid out on Grafana's 24-column grid. A panel without
data says "No data", as Grafana does. No script runs in the page.

    python3 monitoring/preview.py --prometheus http://127.0.0.1:9090 --row Serving --output /tmp/serving.html
"""
from __future__ import annotations

import argparse
import html
import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROW_HEIGHT_PX = 30  # Grafana's grid: one unit of gridPos.h is 30 px
WIDTH, HEIGHT = 360, 150  # the SVG's own coordinates (scaled to the panel)
COLOURS = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0"]


def panels_of(dashboard: dict, row: str | None) -> list[dict]:
    """The panels under the row titled ``row`` (up to the next row), or every non-row panel."""
    out, inside = [], row is None
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            inside = row is None or panel.get("title") == row
            continue
        if inside:
            out.append(panel)
    return out


def substitute(expr: str, variables: dict[str, str]) -> str:
    for name, value in variables.items():
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    return expr


def legend(fmt: str, metric: dict) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(metric.get(m.group(1), "")), fmt or "")
    return text.strip() or json.dumps(metric, sort_keys=True)


def _get(prometheus: str, path: str, params: dict) -> list[dict]:
    url = f"{prometheus.rstrip('/')}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (a URL the caller gives)
        body = json.load(answer)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus {path}: {body.get('error')}")
    return body["data"]["result"]


def fetch(prometheus: str, panel: dict, variables: dict[str, str], start: float, end: float, step: float) -> list[dict]:
    """Series of the panel: [{"name", "points": [(t, v)]}] (an instant value is one point)."""
    series = []
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], variables)
        if panel["type"] == "timeseries":
            result = _get(prometheus, "query_range", {"query": expr, "start": start, "end": end, "step": step})
            for item in result:
                points = [(float(t), float(v)) for t, v in item["values"] if v not in ("NaN", "+Inf", "-Inf")]
                series.append({"name": legend(target.get("legendFormat"), item["metric"]), "points": points,
                               "labels": item["metric"]})
        else:
            for item in _get(prometheus, "query", {"query": expr, "time": end}):
                t, v = item["value"]
                series.append({"name": legend(target.get("legendFormat"), item["metric"]), "labels": item["metric"],
                               "points": [(float(t), float(v))] if v not in ("NaN", "+Inf", "-Inf") else []})
    return [s for s in series if s["points"]]


def fmt_value(value: float, unit: str | None) -> str:
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.1f} s"
    if unit == "reqps":
        return f"{value:.2f} req/s"
    return f"{value:.3g}"


def _chart(series: list[dict], unit: str | None) -> str:
    ts = [t for s in series for t, _ in s["points"]]
    vs = [v for s in series for _, v in s["points"]]
    t0, t1 = min(ts), max(ts)
    lo, hi = min(0.0, min(vs)), max(vs)
    hi = hi if hi > lo else lo + 1.0
    lines = []
    for i, s in enumerate(series):
        pts = " ".join(f"{(t - t0) / ((t1 - t0) or 1) * WIDTH:.1f},{HEIGHT - (v - lo) / (hi - lo) * HEIGHT:.1f}"
                       for t, v in s["points"])
        if len(s["points"]) == 1:  # one sample: a dot, as Grafana draws it
            x, y = pts.split(",")
            lines.append(f'<circle class="series" data-points="1" r="3" cx="{x}" cy="{y}" '
                         f'fill="{COLOURS[i % len(COLOURS)]}"/>')
            continue
        lines.append(f'<polyline class="series" data-points="{len(s["points"])}" fill="none" stroke-width="1.5" '
                     f'stroke="{COLOURS[i % len(COLOURS)]}" points="{pts}"/>')
    keys = "".join(f'<li><span style="background:{COLOURS[i % len(COLOURS)]}"></span>{html.escape(s["name"])} '
                   f'(last {html.escape(fmt_value(s["points"][-1][1], unit))})</li>' for i, s in enumerate(series))
    return (f'<div class="axis">{html.escape(fmt_value(hi, unit))}</div>'
            f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none">{"".join(lines)}</svg>'
            f'<div class="axis">{html.escape(fmt_value(lo, unit))}</div><ul class="legend">{keys}</ul>')


def _table(series: list[dict], unit: str | None) -> str:
    keys = sorted({k for s in series for k in s["labels"] if k != "__name__"})
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "<th>value</th>"
    rows = "".join('<tr class="series" data-points="1">' + "".join(f"<td>{html.escape(str(s['labels'].get(k, '')))}</td>" for k in keys)
                   + f"<td>{html.escape(fmt_value(s['points'][-1][1], unit))}</td></tr>" for s in series)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _stat(series: list[dict], unit: str | None) -> str:
    return "".join(f'<div class="stat series" data-points="1"><b>{html.escape(fmt_value(s["points"][-1][1], unit))}'
                   f'</b><small>{html.escape(s["name"])}</small></div>' for s in series)


def render(dashboard: dict, data: list[tuple[dict, list[dict]]], title: str) -> str:
    """The page: one box per panel at its gridPos, drawn from ``data`` ([(panel, series)])."""
    top = min((p["gridPos"]["y"] for p, _ in data), default=0)
    boxes = []
    for panel, series in data:
        g = panel["gridPos"]
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not series:
            body = '<div class="nodata">No data</div>'
        elif panel["type"] == "timeseries":
            body = _chart(series, unit)
        elif panel["type"] == "table":
            body = _table(series, unit)
        else:
            body = _stat(series, unit)
        boxes.append(f'<section class="panel" data-type="{panel["type"]}" data-series="{len(series)}" '
                     f'style="grid-column:{g["x"] + 1} / span {g["w"]};grid-row:{g["y"] - top + 1} / span {g["h"]}">'
                     f'<h2>{html.escape(panel.get("title", ""))}</h2>{body}</section>')
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ background:#111217; color:#ccccdc; font:13px sans-serif; margin:12px; }}
h1 {{ font-size:16px; margin:0 0 8px; }} h2 {{ font-size:13px; margin:0 0 6px; }}
main {{ display:grid; grid-template-columns:repeat(24, 1fr); grid-auto-rows:{ROW_HEIGHT_PX}px; gap:6px; }}
.panel {{ background:#181b1f; border:1px solid #2c3235; border-radius:2px; padding:6px; overflow:hidden; }}
svg {{ width:100%; height:55%; background:#15171b; }} .axis {{ font-size:10px; color:#8e8e8e; }}
.legend {{ list-style:none; padding:0; margin:2px 0; font-size:11px; }}
.legend span {{ display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; }}
table {{ border-collapse:collapse; width:100%; font-size:11px; }} td, th {{ border-bottom:1px solid #2c3235;
padding:2px 4px; text-align:left; }} .stat b {{ font-size:28px; color:#73bf69; display:block; }}
.nodata {{ color:#8e8e8e; text-align:center; margin-top:20%; }}
</style></head><body><h1>{html.escape(title)}</h1><main>{"".join(boxes)}</main></body></html>
"""


def preview(dashboard: dict, prometheus: str, row: str | None, variables: dict[str, str], seconds: float,
            step: float, end: float | None = None) -> str:
    end = time.time() if end is None else end
    data = [(p, fetch(prometheus, p, variables, end - seconds, end, step)) for p in panels_of(dashboard, row)]
    title = f"{dashboard.get('title', 'dashboard')}" + (f": {row}" if row else "")
    return render(dashboard, data, title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--dashboard", type=Path, default=Path(__file__).with_name("nlu-ci-dashboard.json"))
    parser.add_argument("--row", help="only the panels under this row (e.g. Serving)")
    parser.add_argument("--project", default=".+", help="the $project variable (a regex, as Grafana's All)")
    parser.add_argument("--seconds", type=float, default=3600, help="time range ending now")
    parser.add_argument("--step", type=float, default=15)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    page = preview(json.loads(args.dashboard.read_text()), args.prometheus, args.row, {"project": args.project},
                   args.seconds, args.step)
    args.output.write_text(page)


if __name__ == "__main__":
    main()
