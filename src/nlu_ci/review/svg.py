"""Inline SVG charts for the review page, drawn in Python (no JavaScript, nothing fetched from a network).

Each function returns one ``<svg>`` element as a string; every label is XML-escaped here, so the caller
may insert the result into a page as is. Sizes are fixed by the data (rows, bins), never by the browser.
"""
from __future__ import annotations

from html import escape

GOOD, BAD, NEUTRAL, AXIS = "#2e7d32", "#c62828", "#1565c0", "#555"
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
            f'<title>{escape(label)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{escape(str(text))}</text>'


def _clip(text: str, n: int = 28) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def delta_bars(rows: list[tuple[str, float]], *, label: str = "per-intent F1 change", width: int = 720) -> str:
    """Horizontal bars around zero, one per (name, change); green gains, red losses."""
    if not rows:
        return ""
    bar_h, gap, left, right = 14, 4, 200, 60
    height = len(rows) * (bar_h + gap) + 30
    span = max(0.01, max(abs(d) for _, d in rows))
    half = (width - left - right) / 2
    zero = left + half
    body = [f'<line x1="{zero:.1f}" y1="4" x2="{zero:.1f}" y2="{height - 22}" stroke="{AXIS}"/>']
    for i, (name, d) in enumerate(rows):
        y = 6 + i * (bar_h + gap)
        w = max(1.0, abs(d) / span * half)
        x = zero if d >= 0 else zero - w
        body.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                    f'fill="{GOOD if d >= 0 else BAD}"><title>{escape(str(name))}: {d:+.4f}</title></rect>')
        body.append(_text(left - 6, y + bar_h - 3, _clip(name), "end"))
        # the number on the other side of the axis: it never runs into the label or off the chart
        body.append(_text(zero + (-4 if d >= 0 else 4), y + bar_h - 3, f"{d:+.3f}", "end" if d >= 0 else "start"))
    body.append(_text(zero - half, height - 6, f"{-span:+.3f}", "start"))
    body.append(_text(zero, height - 6, "0", "middle"))
    body.append(_text(zero + half, height - 6, f"{span:+.3f}", "end"))
    return _svg(width, height, body, label)


def heatmap(names: list[str], counts: list[list[int]], *, label: str = "confusion matrix") -> str:
    """A square matrix of counts (rows: true label, columns: predicted); the diagonal in blue, errors in red."""
    if not names:
        return ""
    n = len(names)
    longest = max(len(_clip(name, 24)) for name in names)
    cell, left, top = 26, 190, 16 + int(longest * 6.2 * 0.87)  # rotated column labels: about 6 px a character
    width, height = left + n * cell + 90, top + n * cell + 10  # room for the last rotated column label
    off = [counts[i][j] for i in range(n) for j in range(n) if i != j] or [0]
    diag = [counts[i][i] for i in range(n)] or [0]
    max_off, max_diag = max(1, max(off)), max(1, max(diag))
    body = []
    for j, name in enumerate(names):
        x = left + j * cell + cell / 2
        body.append(_text(x, top - 6, _clip(name, 24), "start", f'transform="rotate(-60 {x:.1f} {top - 6})"'))
    for i, name in enumerate(names):
        y = top + i * cell
        body.append(_text(left - 6, y + cell / 2 + 4, _clip(name), "end"))
        for j in range(n):
            v = counts[i][j]
            share = v / (max_diag if i == j else max_off)
            colour = NEUTRAL if i == j else BAD
            opacity = 0.08 + 0.92 * share if v else 0.03
            body.append(f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                        f'fill="{colour}" fill-opacity="{opacity:.2f}"><title>true {escape(str(name))}, predicted '
                        f'{escape(str(names[j]))}: {v}</title></rect>')
            if v:
                body.append(_text(left + j * cell + cell / 2, y + cell / 2 + 4, str(v), "middle",
                                  'fill="#fff"' if share > 0.55 else ""))
    return _svg(width, height, body, label)


def histogram(series: list[tuple[str, list[int], str]], *, bins: int, label: str, width: int = 340) -> str:
    """Grouped bars over equal confidence bins [0, 1]: ``series`` = [(name, counts per bin, colour)]."""
    if not series or bins < 1:
        return ""
    left, bottom, top, height = 34, 34, 22, 190
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(1, max(max(c) if c else 0 for _, c, _ in series))
    group = plot_w / bins
    bar_w = max(1.0, (group - 2) / len(series))
    body = [f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{AXIS}"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{AXIS}"/>',
            _text(left - 4, top + 4, str(peak), "end"), _text(left - 4, top + plot_h, "0", "end")]
    for s, (name, counts, colour) in enumerate(series):
        for b, v in enumerate(counts):
            h = v / peak * plot_h
            x = left + b * group + 1 + s * bar_w
            body.append(f'<rect class="bar" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                        f'height="{max(h, 0.5):.1f}" fill="{colour}"><title>{escape(name)} {b / bins:.1f}–'
                        f'{(b + 1) / bins:.1f}: {v}</title></rect>')
        lx = left + 6 + s * 110
        body.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{colour}"/>')
        body.append(_text(lx + 14, 13, name))
    for b in range(0, bins + 1, max(1, bins // 5)):
        body.append(_text(left + b * group, top + plot_h + 14, f"{b / bins:.1f}", "middle"))
    body.append(_text(left + plot_w / 2, height - 4, "confidence", "middle"))
    return _svg(width, height, body, label)
