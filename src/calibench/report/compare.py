"""A comparison on the console: the summary table and the layers ranked by time and by error.

The summary rows are text shared with the HTML report (:mod:`calibench.report.html`).
"""

from __future__ import annotations

import io
import math

from rich.console import Console
from rich.table import Table

from calibench.report.comparison import Comparison, LayerComparison, drop_words, speed_words
from calibench.report.layer_counts import count_layers
from calibench.runtime.conditions import with_conditions

PERF_KEYS = ("latency_ms_median", "latency_ms_p90", "latency_ms_p99", "throughput")


def render_comparison(c: Comparison, console: Console) -> None:
    """The summary and the two layer rankings, on the console."""
    console.print(_summary_table(c))
    if c.int8_warning:
        console.print(f"Warning: {c.int8_warning}")
    console.print(
        _layer_table(
            c.slowest(),
            f"Slowest layers ({profile_source(c)}, mean of {c.fp32_time.runs} runs)",
        )
    )
    worst = c.worst_sqnr()
    if worst:
        console.print(
            _layer_table(
                worst,
                f"Worst layers by SQNR (INT8 vs FP32 output, {c.error_samples} samples)",
            )
        )
    for note in c.notes:
        console.print(f"Note: {note}")


def comparison_text(c: Comparison) -> str:
    """What :func:`render_comparison` prints, as plain text."""
    console = Console(width=160, record=True, file=io.StringIO())
    render_comparison(c, console)
    return console.export_text()


def profile_source(c: Comparison) -> str:
    """``ONNX Runtime profiler: batch 1, 1 thread, ONNX Runtime, AMD EPYC: AVX512-VNNI``."""
    source = "OpenVINO runtime graph" if c.runtime == "openvino" else "ONNX Runtime profiler"
    conditions = (c.profile_measured_on or {}).get("text")
    if conditions:
        return f"{source}: {conditions}"
    return f"{source}, batch {c.fp32_time.batch}, {c.fp32_time.threads} thread(s)"


def summary_rows(c: Comparison) -> list[tuple[str, str, str, str]]:
    """(measure, FP32, INT8, change) as text: what the console and HTML summaries show."""
    rows: list[tuple[str, str, str, str]] = []
    if c.accuracy:
        drops = c.accuracy_drop
        fp32, int8 = c.accuracy.get("fp32", {}), c.accuracy.get("int8", {})
        for key in sorted(drops, key=lambda k: k != c.metric):
            rows.append(
                (
                    f"accuracy: {key}",
                    f"{float(fp32[key]):.4g}",
                    f"{float(int8[key]):.4g}",
                    drop_words(drops[key]),
                )
            )
    labels = {
        "latency_ms_median": "latency median (ms)",
        "latency_ms_p90": "latency p90 (ms)",
        "latency_ms_p99": "latency p99 (ms)",
        "throughput": "throughput (samples/s)",
    }
    for key in PERF_KEYS:
        f, i = c.perf_figure("fp32", key), c.perf_figure("int8", key)
        if f is None and i is None:
            continue
        ratio = ""
        if f and i:
            ratio = speed_words(i / f if key == "throughput" else f / i)
            if key == "latency_ms_median":
                ratio = with_conditions(ratio, c.measured_on)
        rows.append((labels[key], _num(f), _num(i), ratio))
    if c.perf:
        settings = [
            f"{k} {c.perf.get('int8', {}).get(k)}"
            for k in ("batch", "streams")
            if c.perf.get("int8", {}).get(k) is not None
        ]
        if settings:
            rows.append(("inference settings", "", ", ".join(settings), ""))
        if c.measured_on and c.measured_on.get("text"):
            rows.append(("measured on", "", str(c.measured_on["text"]), ""))
    speedup = c.kernel_speedup
    rows.append(
        (
            "kernel time, profiled (ms)",
            f"{c.fp32_time.total_ms:.4g}",
            f"{c.int8_time.total_ms:.4g}",
            with_conditions(speed_words(speedup), c.profile_measured_on) if speedup else "",
        )
    )
    f_mb, i_mb = c.sizes["fp32"] / 1e6, c.sizes["int8"] / 1e6
    rows.append(("size on disk (MB)", f"{f_mb:.3g}", f"{i_mb:.3g}", f"{i_mb / f_mb:.0%}"))
    rows.append(
        ("INT8 layers", "", count_layers(r for r in c.layers if r.precision != "-").words(), "")
    )
    for name, value in c.output_sqnr.items():
        rows.append((f"output SQNR: {name} (dB)", "", _db(value), ""))
    return rows


def _summary_table(c: Comparison) -> Table:
    table = Table(title=c.title)
    for column in ("measure", "FP32", "INT8", "change"):
        table.add_column(column, overflow="fold")
    for row in summary_rows(c):
        table.add_row(*row)
    return table


def _layer_table(rows: list[LayerComparison], title: str) -> Table:
    table = Table(title=title)
    for column in ("layer", "type", "runtime", "FP32 ms", "INT8 ms", "speed-up", "SQNR dB"):
        table.add_column(column, overflow="fold", justify="left" if column == "layer" else "right")
    for row in rows:
        speedup = row.speedup
        table.add_row(
            row.name,
            row.op_type,
            row.precision,
            _ms(row.fp32_ms),
            _ms(row.int8_ms),
            speed_words(speedup) if speedup else "—",
            _db(row.sqnr_db),
        )
    return table


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _db(value: float | None) -> str:
    if value is None:
        return "—"
    return "identical" if math.isinf(value) and value > 0 else f"{value:.1f}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"
