"""The HTML report: one offline file, two SVG charts, every model-given name escaped."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

import calibench
from calibench.report.comparison import Comparison, LayerComparison
from calibench.report.html import TIME_CHART_LAYERS, render_html, write_html
from calibench.runtime.profiling import LayerTimes
from calibench.workflow.compare import compare_models

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'


def _comparison(layers: int = 40) -> Comparison:
    rows = [
        LayerComparison(
            name=f"/block{i}/Conv",
            op_type="Conv",
            precision="INT8",
            kernel="QLinearConv",
            fp32_ms=0.1 * (i + 1),
            int8_ms=0.04 * (i + 1),
            sqnr_db=40.0 - i * 0.5,
        )
        for i in range(layers)
    ]
    rows[3].name = HOSTILE
    rows[5].sqnr_db = math.inf  # identical output
    rows[-2].fp32_ms = None  # fused into a neighbour in FP32
    rows.append(LayerComparison("/relu", "Relu", "INT8", "(folded)", None, None, None))

    def times(scale: float) -> LayerTimes:
        layers_ms = {r.name: (r.fp32_ms or 0.0) * scale for r in rows}
        layers_ms["(layout)"] = 0.01
        return LayerTimes(
            layers_ms, sum(layers_ms.values()), 1.1 * sum(layers_ms.values()), 20, 1, 1
        )

    return Comparison(
        fp32_model="net.onnx",
        int8_model=f"{HOSTILE}.onnx",
        layers=rows,
        fp32_time=times(1.0),
        int8_time=times(0.4),
        sizes={"fp32": 14_000_000, "int8": 3_600_000},
        output_sqnr={"logits": 28.5},
        error_samples=8,
        accuracy={"fp32": {"top1": 71.8}, "int8": {"top1": 71.2}, "metric": "top1"},
        perf={
            "fp32": {"latency_ms_median": 5.0, "throughput": 200.0, "batch": 1, "streams": 1},
            "int8": {"latency_ms_median": 2.0, "throughput": 500.0, "batch": 1, "streams": 1},
        },
        notes=[f"a note naming {HOSTILE}"],
    )


def test_self_contained_with_two_charts_and_a_summary(tmp_path: Path) -> None:
    path = write_html(_comparison(), tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count("<svg") == 2 and text.count("</svg>") == 2
    assert 'aria-label="Time per layer' in text and 'aria-label="SQNR per INT8 layer' in text
    # Nothing fetched from elsewhere: no URLs, scripts, external styles or fonts.
    assert "http://" not in text and "https://" not in text
    for fetched in ("<script", "<link", "@import", "url(", "@font-face"):
        assert fetched not in text, fetched
    assert re.search(r"<[^>]*\s(src|href)=", text) is None
    # Summary: accuracy and its drop, latency, throughput, size, INT8 layer count.
    for expected in ("71.2", "drop 0.60 pt", "2.50× faster", "500/s", "3.6 MB", "Conv in INT8"):
        assert expected in text, expected
    assert list(path.parent.iterdir()) == [path]  # written atomically, nothing left behind


def test_names_are_escaped() -> None:
    text = render_html(_comparison())
    assert "<script" not in text and "<img" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;img" in text


def test_time_chart_shows_the_slowest_layers_only() -> None:
    text = render_html(_comparison(40))
    chart = text[text.index('aria-label="Time per layer') : text.index("</svg>")]
    assert len(re.findall(r"<rect ", chart)) == 2 * TIME_CHART_LAYERS - 1  # one FP32 bar fused
    assert "/block39/Conv" in chart and "/block0/Conv" not in chart
    sqnr = text[text.index('aria-label="SQNR per INT8 layer') :]
    sqnr = sqnr[: sqnr.index("</svg>")]
    assert sqnr.count("<rect ") == 40  # every measured layer; the folded Relu has no SQNR
    assert sqnr.count('fill="#c0392b"><title>') == 5  # the five worst highlighted
    assert "identical" in sqnr


def test_end_to_end_on_the_tiny_cnn(tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path) -> None:
    int8 = calibench.calibrate(tiny_cnn_path, tiny_data, subset=8).save(tmp_path / "q.onnx")
    samples = [{"input": x} for x in np.load(tiny_data)["input"][:4]]
    comparison = compare_models(tiny_cnn_path, int8, samples, profile_runs=3, profile_warmup=1)
    text = write_html(comparison, tmp_path / "report.html").read_text(encoding="utf-8")
    assert text.count("<svg") == 2 and "/c1/c1.0/Conv" in text and "http" not in text


def test_a_report_without_layers_or_figures_renders() -> None:
    empty = LayerTimes({}, 0.0, 0.0, 1, 1, 1)
    comparison = Comparison("a.onnx", "b.onnx", [], empty, empty, {"fp32": 1, "int8": 1}, {}, 0)
    text = render_html(comparison)
    assert text.rstrip().endswith("</html>")
    assert "No layer times." in text and "No quantized layer to measure." in text
