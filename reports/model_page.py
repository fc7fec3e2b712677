"""The ``keraspec check-model`` HTML page: one self-contained page in the report's style.

It shows the verdict (the first diverging layer with its error and config), a chart of the error
along the graph (local and chained max abs error per layer, log scale, inline SVG), and the
per-layer table.  Everything from the model file -- layer names, configs, messages -- is escaped
by Jinja2's autoescape; the only markup marked safe is the report's own CSS and the SVG built here
from numbers.  No script, nothing loaded from the network (the report's Content-Security-Policy).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape

from .model import fmt_err

STYLE = Path(__file__).parent / "templates" / "style.css"

#: Chart geometry (pixels).
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 900, 220, 40

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; script-src 'none'">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="keraspec.reports">
<title>{{ check.model_name }} · keraspec check-model</title>
<style>
{{ style }}
</style>
</head>
<body>
<header class="top"><p>keraspec check-model</p></header>
<main>
<h1>Model <code>{{ check.model_name }}</code></h1>
<dl class="kv">
<dt>file</dt><dd><code>{{ check.path }}</code></dd>
<dt>flavour</dt><dd>{{ check.flavor }}</dd>
<dt>oracle</dt><dd>{{ check.oracle }} {{ check.oracle_version }}</dd>
<dt>inputs</dt><dd>{{ shapes }} {{ check.dtype }}{% if check.seed is not none %} (drawn, seed {{ check.seed }}){% else %} (given){% endif %}</dd>
<dt>time</dt><dd>{{ check.seconds }} s</dd>
</dl>
{% if first %}
<section class="banner bad"><h2>Diverges at layer {{ first.index }} <code>{{ first.name }}</code> ({{ first.class_name }})</h2>
<p>{{ first.local.detail }}</p>
<pre>{{ first_config }}</pre></section>
{% elif skipped %}
<section class="banner bad"><h2>Incomplete: {{ skipped|length }} layer{{ 's' if skipped|length != 1 }} could not be compared</h2>
<ul>{% for r in skipped %}<li><code>{{ r.name }}</code> ({{ r.class_name }}): {{ r.note }}</li>{% endfor %}</ul></section>
{% else %}
<section class="banner good"><h2>Conforms: all {{ check.rows|length }} layers agree with {{ check.oracle }}</h2></section>
{% endif %}
<h2>Error along the graph</h2>
<p class="muted">Max abs error per layer, in topological order, log scale. <strong>Local</strong>: the layer run on the oracle's
inputs to it (judged by the tolerance policy); <strong>chained</strong>: the whole model run by keraspec (how rounding grows).</p>
<div class="scroll">{{ chart }}</div>
<h2>Layers</h2>
<div class="scroll tall"><table>
<thead><tr><th>#</th><th>layer</th><th>type</th><th>output shape</th><th>numerics</th><th>local max abs err</th><th>local max rel err</th><th>tolerance</th><th>chained max abs err</th><th>status</th></tr></thead>
<tbody>
{% for r in check.rows %}
<tr class="st-{{ r.status }}"><td class="num">{{ r.index }}</td><td><code>{{ r.name }}</code></td><td>{{ r.class_name }}</td>
<td>{{ shape(r.output_shape) }}</td><td>{{ r.op_class }}</td>
<td class="num">{{ err(r.local.max_abs_err) if r.local else "" }}</td><td class="num">{{ err(r.local.max_rel_err) if r.local else "" }}</td>
<td>{{ r.local.tolerance if r.local else "" }}</td><td class="num">{{ err(r.chained_abs) }}</td>
<td><span class="badge st-{{ r.status }}">{{ r.status }}</span>{% if r.note %} <span class="muted">{{ r.note }}</span>{% endif %}</td></tr>
{% endfor %}
</tbody></table></div>
</main>
<footer><p>Generated {{ generated }} by keraspec.reports. This page is self-contained and loads nothing from the network.</p></footer>
</body>
</html>
"""


def _shape(shape: Any) -> str:
    return "" if shape is None else "(" + ", ".join(str(s) for s in shape) + ")"


def _err(value: float | None) -> str:
    return fmt_err(value) if value is not None else ""


def _log_points(values: list[float | None], floor: float) -> list[float | None]:
    return [None if v is None else math.log10(max(v, floor)) if math.isfinite(v) else None for v in values]


def error_chart(check: Any) -> Markup:
    """An inline SVG: local and chained max abs error per layer (log10), with a title per point."""
    rows = check.rows
    local = [r.local.max_abs_err if r.local else None for r in rows]
    chained = [r.chained_abs for r in rows]
    finite = [v for v in local + chained if v is not None and math.isfinite(v) and v > 0]
    floor = min(finite) if finite else 1e-12
    lo = math.floor(math.log10(floor))
    hi = math.ceil(math.log10(max(finite))) if finite else lo + 1
    hi = max(hi, lo + 1)
    n = max(len(rows) - 1, 1)

    def x(i: int) -> float:
        return CHART_PAD + (CHART_WIDTH - 2 * CHART_PAD) * i / n

    def y(v: float) -> float:
        return CHART_HEIGHT - CHART_PAD - (CHART_HEIGHT - 2 * CHART_PAD) * (v - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
             f'role="img" aria-label="max abs error per layer, log scale">']
    for e in range(lo, hi + 1):
        parts.append(f'<line x1="{CHART_PAD}" x2="{CHART_WIDTH - CHART_PAD}" y1="{y(e):.1f}" y2="{y(e):.1f}" '
                     'stroke="#ddd"/>')
        parts.append(f'<text x="2" y="{y(e) + 4:.1f}" font-size="10">1e{e}</text>')
    for label, values, colour in (("local", local, "#1f77b4"), ("chained", chained, "#d62728")):
        points = _log_points(values, 10.0 ** lo)
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(points) if v is not None)
        if path:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        for i, v in enumerate(points):
            if v is None:
                continue
            title = escape(f"{rows[i].index} {rows[i].name} ({rows[i].class_name}): {label} {values[i]:.3g}")
            fill = "#d62728" if label == "local" and rows[i].status == "failed" else colour
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{fill}"><title>{title}</title></circle>')
    parts.append(f'<text x="{CHART_PAD}" y="{CHART_HEIGHT - 8}" font-size="11" fill="#1f77b4">local</text>'
                 f'<text x="{CHART_PAD + 50}" y="{CHART_HEIGHT - 8}" font-size="11" fill="#d62728">chained</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def render_page(check: Any) -> str:
    """The page's HTML for a ``keraspec.conformance.model_check.ModelCheck``."""
    env = Environment(autoescape=True, undefined=StrictUndefined)
    first = check.first_divergence
    return env.from_string(PAGE).render(
        check=check,
        style=Markup(STYLE.read_text(encoding="utf-8")),
        chart=error_chart(check),
        first=first,
        first_config=json.dumps(first.config, indent=1, default=str) if first else "",
        skipped=check.skipped,
        shapes=", ".join(_shape(s) for s in check.input_shapes),
        shape=_shape,
        err=_err,
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_page(check: Any, out: Any) -> Path:
    """Write the page to ``out`` (an .html path); returns it."""
    out = Path(out)
    out.write_text(render_page(check), encoding="utf-8")
    return out


__all__ = ["error_chart", "render_page", "write_page"]
