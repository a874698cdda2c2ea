"""The comparison as one self-contained HTML file: summary cards, two charts, the layer table.

Why so plain: the report is opened from disk, mailed, attached to tickets, often on machines with
no network. So it is one file with inline CSS and inline SVG drawn here; no scripts, no fonts or
styles from elsewhere. Every name that came from a model is escaped: layer names are free text.
"""

from __future__ import annotations

import math
import os
from html import escape
from pathlib import Path

from calibench._files import replacing
from calibench.report.compare import profile_source, summary_rows
from calibench.report.comparison import Comparison, LayerComparison, drop_words, speed_words
from calibench.report.layer_counts import count_layers
from calibench.runtime.conditions import with_conditions

TIME_CHART_LAYERS = 25
WORST_HIGHLIGHTED = 5
"""At most; a quarter of the measured layers for small models."""
FP32_COLOUR = "#5b7db1"
INT8_COLOUR = "#e07b39"
SQNR_COLOUR = "#6c9a6c"
WORST_COLOUR = "#c0392b"
LABEL_CHARS = 46

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;background:#f5f6f8;color:#1f2328}
main{max-width:1200px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 8px}
.sub{color:#57606a;margin:0 0 20px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:12px 14px}
.card .k{font-size:12px;color:#57606a;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600;margin:4px 0 2px;font-variant-numeric:tabular-nums}
.card .d{font-size:13px;color:#57606a}
.good{color:#1a7f37}.bad{color:#c0392b}
.panel{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:12px 14px;
overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}
td.l,th.l{text-align:left}td.name{font-family:ui-monospace,Menlo,Consolas,monospace;
white-space:normal;word-break:break-all}
tr.worst td{background:#fdecea}
.legend{font-size:12px;color:#57606a;margin:0 0 6px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 12px}
.note{font-size:12.5px;color:#57606a;line-height:1.5}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:8px;padding:8px 12px;
font-size:13px;margin:0 0 12px}
svg{max-width:100%;height:auto}
svg text{font-family:ui-monospace,Menlo,Consolas,monospace}
"""


def write_html(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write the report to ``path`` atomically (a temporary file beside it, then a rename)."""
    document = render_html(comparison)
    with replacing(Path(path)) as temp:
        temp.write_text(document, encoding="utf-8")
    return Path(path)


def render_html(c: Comparison) -> str:
    title = c.title
    profile = c.fp32_time
    measured = [r for r in c.layers if r.sqnr_db is not None]
    highlighted = max(1, min(WORST_HIGHLIGHTED, len(measured) // 4))
    worst = {r.name for r in c.worst_sqnr(highlighted)}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>calibench: {escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        '<p class="sub">calibench comparison report. Layer times: '
        f"{escape(profile_source(c))}, mean of {profile.runs} runs. "
        f"Layer error: SQNR on {c.error_samples} sample(s).</p>",
        _measured_on(c),
        _cards(c),
        "<h2>Summary</h2>",
        _summary_table(c),
        f"<h2>Time per layer: the {min(TIME_CHART_LAYERS, len(c.slowest(TIME_CHART_LAYERS)))} "
        "slowest layers</h2>",
        '<div class="panel">',
        _legend([(FP32_COLOUR, "FP32"), (INT8_COLOUR, "INT8")]),
        time_chart(c.slowest(TIME_CHART_LAYERS)),
        "</div>",
        "<h2>Error per layer: SQNR of each INT8 layer's output (higher is better)</h2>",
        '<div class="panel">',
        _legend([(SQNR_COLOUR, "SQNR, dB"), (WORST_COLOUR, _worst_label(highlighted))]),
        sqnr_chart(measured, worst),
        "</div>",
        '<p class="note">SQNR is cumulative: a layer\'s figure holds the error of every quantized '
        "layer before it, so a sharp fall from one layer to the next marks where error is added. "
        "A dash in the time columns: ONNX Runtime fused the layer into a neighbour in that model "
        "and its time is counted there.</p>",
        "<h2>All layers</h2>",
        '<div class="panel">',
        _layers_table(c.layers, worst),
        "</div>",
        _unassigned(c),
    ]
    if c.notes:
        parts.append("<h2>Notes</h2><ul class='note'>")
        parts.extend(f"<li>{escape(n)}</li>" for n in c.notes)
        parts.append("</ul>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def time_chart(rows: list[LayerComparison]) -> str:
    """Horizontal bars, FP32 above INT8, per layer; one shared millisecond scale."""
    if not rows:
        return "<p class='note'>No layer times.</p>"
    label_w, bar_w, value_w, row_h, top = 360, 640, 90, 30, 22
    width = label_w + bar_w + value_w
    height = top + row_h * len(rows) + 8
    longest = max(max(r.fp32_ms or 0.0, r.int8_ms or 0.0) for r in rows) or 1.0
    scale = _nice_ceiling(longest)
    out = [_svg_open(width, height, "Time per layer, FP32 and INT8, in milliseconds")]
    out.extend(_grid(label_w, bar_w, top, height - 8, scale, "ms"))
    for i, row in enumerate(rows):
        y = top + i * row_h
        out.append(_label(row.name, label_w - 8, y + row_h / 2 + 4))
        for j, (value, colour, kind) in enumerate(
            ((row.fp32_ms, FP32_COLOUR, "FP32"), (row.int8_ms, INT8_COLOUR, "INT8"))
        ):
            bar_y = y + 3 + j * 12
            if value is None:
                out.append(
                    f'<text x="{label_w + 4}" y="{bar_y + 9}" font-size="10" fill="#8c959f">'
                    f"{kind}: fused into a neighbour</text>"
                )
                continue
            w = max(1.0, bar_w * value / scale)
            tip = escape(f"{row.name}: {kind} {value:.4f} ms")
            out.append(
                f'<rect x="{label_w}" y="{bar_y}" width="{w:.1f}" height="11" fill="{colour}">'
                f"<title>{tip}</title></rect>"
            )
            out.append(
                f'<text x="{label_w + w + 4:.1f}" y="{bar_y + 9}" font-size="10" fill="#1f2328">'
                f"{value:.3f}</text>"
            )
        speedup = row.speedup
        if speedup:
            cls = "#1a7f37" if speedup >= 1 else WORST_COLOUR
            out.append(
                f'<text x="{width - 4}" y="{y + row_h / 2 + 4}" font-size="11" fill="{cls}" '
                f'text-anchor="end">{speed_words(speedup)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def sqnr_chart(rows: list[LayerComparison], worst: set[str]) -> str:
    """Horizontal bars of SQNR in dB, layers in graph order, the worst ones in red."""
    if not rows:
        return "<p class='note'>No quantized layer to measure.</p>"
    label_w, bar_w, value_w, row_h, top = 360, 640, 90, 16, 22
    width = label_w + bar_w + value_w
    height = top + row_h * len(rows) + 8
    finite = [r.sqnr_db for r in rows if r.sqnr_db is not None and math.isfinite(r.sqnr_db)]
    scale = _nice_ceiling(max([v for v in finite if v > 0], default=1.0))
    out = [_svg_open(width, height, "SQNR per INT8 layer in dB")]
    out.extend(_grid(label_w, bar_w, top, height - 8, scale, "dB"))
    for i, row in enumerate(rows):
        y = top + i * row_h
        value = row.sqnr_db if row.sqnr_db is not None else 0.0
        is_worst = row.name in worst
        colour = WORST_COLOUR if is_worst else SQNR_COLOUR
        shown = scale if math.isinf(value) and value > 0 else max(0.0, value)
        w = max(1.0, bar_w * min(shown, scale) / scale)
        text = "identical" if math.isinf(value) and value > 0 else f"{value:.1f} dB"
        weight = ' font-weight="bold"' if is_worst else ""
        out.append(_label(row.name, label_w - 8, y + row_h / 2 + 4, bold=is_worst))
        out.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" '
            f'fill="{colour}"><title>{escape(f"{row.name}: {text}")}</title></rect>'
        )
        out.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + row_h / 2 + 4}" font-size="10" '
            f'fill="{colour}"{weight}>{text}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _worst_label(count: int) -> str:
    return "the worst layer" if count == 1 else f"the {count} worst layers"


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg role="img" aria-label="{escape(label)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    )


def _grid(x0: int, w: int, top: int, bottom: int, scale: float, unit: str) -> list[str]:
    lines = []
    for k in range(5):
        value = scale * k / 4
        x = x0 + w * k / 4
        lines.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#eaeef2"/>'
        )
        lines.append(
            f'<text x="{x:.1f}" y="{top - 8}" font-size="10" fill="#57606a" '
            f'text-anchor="middle">{value:g} {unit}</text>'
        )
    return lines


def _label(name: str, x: float, y: float, bold: bool = False) -> str:
    shown = name if len(name) <= LABEL_CHARS else "…" + name[-(LABEL_CHARS - 1) :]
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x}" y="{y:.1f}" font-size="11" text-anchor="end" fill="#1f2328"{weight}>'
        f"<title>{escape(name)}</title>{escape(shown)}</text>"
    )


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value``: round numbers on the axis."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span class="sw" style="background:{colour}"></span>{escape(text)}'
        for colour, text in items
    )
    return f'<p class="legend">{spans}</p>'


def _cards(c: Comparison) -> str:
    cards: list[tuple[str, str, str, str]] = []  # key, value, detail, css class of detail
    metric = c.metric
    if c.accuracy and metric and metric in c.accuracy_drop:
        fp32 = float(c.accuracy["fp32"][metric])
        int8 = float(c.accuracy["int8"][metric])
        drop = c.accuracy_drop[metric]
        cards.append(
            (
                f"accuracy ({metric})",
                f"{int8:.4g}",
                f"FP32 {fp32:.4g}, {drop_words(drop)}",
                "bad" if drop > 0 else "good",
            )
        )
    latency = c.latency_speedup
    if latency:
        f = c.perf_figure("fp32", "latency_ms_median")
        i = c.perf_figure("int8", "latency_ms_median")
        cards.append(
            (
                "latency, median",
                f"{i:.4g} ms",
                f"FP32 {f:.4g} ms, {with_conditions(speed_words(latency), c.measured_on)}",
                "good" if latency >= 1 else "bad",
            )
        )
    gain = c.throughput_gain
    if gain:
        f = c.perf_figure("fp32", "throughput")
        i = c.perf_figure("int8", "throughput")
        cards.append(
            ("throughput", f"{i:.4g}/s", f"FP32 {f:.4g}/s, {speed_words(gain)}", _good(gain >= 1))
        )
    kernel = c.kernel_speedup
    if kernel:
        cards.append(
            (
                "kernel time (profiled)",
                f"{c.int8_time.total_ms:.4g} ms",
                f"FP32 {c.fp32_time.total_ms:.4g} ms, {speed_words(kernel)}",
                _good(kernel >= 1),
            )
        )
    f_mb, i_mb = c.sizes["fp32"] / 1e6, c.sizes["int8"] / 1e6
    cards.append(("size on disk", f"{i_mb:.3g} MB", f"FP32 {f_mb:.3g} MB, {i_mb / f_mb:.0%}", ""))
    counts = count_layers(r for r in c.layers if r.precision != "-")
    cards.append(
        (f"{counts.weighted_label} in INT8", f"{counts.weighted_int8}", counts.words(), "")
    )
    for name, sqnr in list(c.output_sqnr.items())[:2]:
        text = "identical" if math.isinf(sqnr) and sqnr > 0 else f"{sqnr:.1f} dB"
        cards.append((f"output SQNR: {name}", text, "INT8 against FP32", ""))
    html = ['<div class="cards">']
    for key, value, detail, cls in cards:
        html.append(
            f'<div class="card"><div class="k">{escape(key)}</div>'
            f'<div class="v">{escape(value)}</div>'
            f'<div class="d {cls}">{escape(detail)}</div></div>'
        )
    html.append("</div>")
    return "\n".join(html)


def _measured_on(c: Comparison) -> str:
    """The conditions of the speed figures, and a warning where INT8 cannot be fast."""
    parts = []
    conditions = (c.measured_on or {}).get("text")
    if conditions:
        parts.append(f'<p class="sub">Speed measured on: {escape(str(conditions))}.</p>')
    if c.int8_warning:
        parts.append(f'<p class="warn">Warning: {escape(c.int8_warning)}.</p>')
    return "\n".join(parts)


def _good(ok: bool) -> str:
    return "good" if ok else "bad"


def _summary_table(c: Comparison) -> str:
    rows = "".join(
        f'<tr><td class="l">{escape(m)}</td><td>{escape(f)}</td><td>{escape(i)}</td>'
        f"<td>{escape(d)}</td></tr>"
        for m, f, i, d in summary_rows(c)
    )
    return (
        '<div class="panel"><table><thead><tr><th class="l">measure</th><th>FP32</th>'
        f"<th>INT8</th><th>change</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _layers_table(layers: list[LayerComparison], worst: set[str]) -> str:
    head = (
        '<table><thead><tr><th class="l">layer</th><th class="l">type</th>'
        '<th class="l">runtime</th><th class="l">kernel</th><th>FP32 ms</th><th>INT8 ms</th>'
        "<th>speed-up</th><th>SQNR dB</th></tr></thead><tbody>"
    )
    body = []
    for r in layers:
        speedup = r.speedup
        sqnr = r.sqnr_db
        sqnr_text = (
            "—"
            if sqnr is None
            else ("identical" if math.isinf(sqnr) and sqnr > 0 else f"{sqnr:.1f}")
        )
        cls = ' class="worst"' if r.name in worst else ""
        body.append(
            f'<tr{cls}><td class="l name">{escape(r.name)}</td><td class="l">'
            f'{escape(r.op_type)}</td><td class="l">{escape(r.precision)}</td>'
            f'<td class="l">{escape(r.kernel)}</td><td>{_ms(r.fp32_ms)}</td>'
            f"<td>{_ms(r.int8_ms)}</td><td>{speed_words(speedup) if speedup else '—'}</td>"
            f"<td>{sqnr_text}</td></tr>"
        )
    return head + "".join(body) + "</tbody></table>"


def _unassigned(c: Comparison) -> str:
    buckets = c.buckets()
    if not buckets:
        return ""
    meaning = {
        "(layout)": "layout changes ONNX Runtime inserted (Transpose, Reorder)",
        "(convert)": "QuantizeLinear/DequantizeLinear left standing (e.g. quantizing the input)",
        "(other)": "kernels not traced back to a layer",
    }
    rows = "".join(
        f'<tr><td class="l">{escape(b)}</td><td class="l">{escape(meaning.get(b, ""))}</td>'
        f"<td>{_ms(t['fp32'])}</td><td>{_ms(t['int8'])}</td></tr>"
        for b, t in buckets.items()
    )
    return (
        "<h2>Time not owned by a layer</h2>"
        '<div class="panel"><table><thead><tr><th class="l">bucket</th><th class="l">what</th>'
        f"<th>FP32 ms</th><th>INT8 ms</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
