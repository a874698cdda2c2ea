"""compare_models end to end on the tiny CNN: rows, totals, figures passed in, JSON, console."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import calibench
from calibench.report.compare import comparison_text, render_comparison
from calibench.report.comparison import Comparison
from calibench.workflow.compare import compare_models, size_on_disk

ACCURACY = {"fp32": {"top1": 76.1, "top5": 92.9}, "int8": {"top1": 75.4, "top5": 92.8}}
PERF = {
    "fp32": {
        "latency_ms_median": 2.0,
        "latency_ms_p90": 2.2,
        "latency_ms_p99": 2.9,
        "throughput": 500.0,
        "batch": 1,
        "streams": 1,
    },
    "int8": {
        "latency_ms_median": 1.0,
        "latency_ms_p90": 1.1,
        "latency_ms_p99": 1.5,
        "throughput": 1000.0,
        "batch": 1,
        "streams": 1,
    },
}


@pytest.fixture(scope="module")
def comparison(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Comparison:
    int8_path = tmp_path_factory.mktemp("compare") / "tiny-int8.onnx"
    calibench.calibrate(tiny_cnn_path, tiny_data, subset=16, placement="rule").save(int8_path)
    samples = [{"input": x} for x in np.load(tiny_data)["input"][:6]]
    return compare_models(
        tiny_cnn_path,
        int8_path,
        samples,
        accuracy={**ACCURACY, "metric": "top1"},
        perf=PERF,
        batch=2,
        profile_runs=5,
        profile_warmup=1,
    )


def test_every_conv_row_has_both_times_and_an_sqnr(comparison: Comparison) -> None:
    rows = {r.name: r for r in comparison.layers}
    convs = [r for r in rows.values() if r.op_type == "Conv"]
    assert len(convs) == 3
    for row in convs:
        assert row.precision == "INT8" and row.kernel == "QLinearConv"
        assert row.fp32_ms and row.fp32_ms > 0 and row.int8_ms and row.int8_ms > 0
        assert row.speedup == pytest.approx(row.fp32_ms / row.int8_ms)
        assert row.sqnr_db is not None and math.isfinite(row.sqnr_db)
    # Fused in FP32 (summed into the Conv before it), its own QLinearAdd in INT8.
    assert rows["/Add"].fp32_ms is None and rows["/Add"].int8_ms is not None
    assert rows["/Add"].speedup is None
    assert rows["/c1/c1.2/Clip"].kernel == "(folded)" and rows["/c1/c1.2/Clip"].sqnr_db is None
    assert comparison.int8_layers == 8 and comparison.error_samples == 6
    assert comparison.fp32_time.batch == comparison.int8_time.batch == 2
    assert "(layout)" in comparison.buckets() and "(convert)" in comparison.buckets()


def test_figures_passed_in_and_derived(comparison: Comparison, tiny_cnn_path: Path) -> None:
    assert comparison.metric == "top1"
    assert comparison.accuracy_drop == pytest.approx({"top1": 0.7, "top5": 0.1})
    assert comparison.latency_speedup == pytest.approx(2.0)
    assert comparison.throughput_gain == pytest.approx(2.0)
    assert comparison.sizes["fp32"] == size_on_disk(tiny_cnn_path) > 0
    assert comparison.sizes["int8"] > 0
    assert comparison.output_sqnr["logits"] > 15
    totals = comparison.fp32_time.total_ms, comparison.int8_time.total_ms
    assert comparison.kernel_speedup == pytest.approx(totals[0] / totals[1])


def test_to_dict_is_strict_json(comparison: Comparison) -> None:
    data = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert data["accuracy"]["drop"]["top1"] == pytest.approx(0.7)
    assert data["performance"]["latency_speedup"] == pytest.approx(2.0)
    assert data["int8_layers"] == 8
    assert data["profile"]["batch"] == 2 and data["profile"]["runs"] == 5
    assert {r["name"] for r in data["layers"]} >= {"/c1/c1.0/Conv", "/fc/Gemm"}
    assert data["error"]["outputs_sqnr_db"]["logits"] > 15


def test_render_shows_summary_and_both_rankings(comparison: Comparison) -> None:
    console = Console(width=200, record=True, file=io.StringIO())
    render_comparison(comparison, console)
    text = console.export_text()
    assert "accuracy: top1" in text and "drop 0.70 pt" in text
    assert "2.00× faster" in text
    assert "Slowest layers" in text and "Worst layers by SQNR" in text
    assert "/c2/c2.0/Conv" in text
    assert comparison_text(comparison).count("Slowest layers") == 1


def test_without_accuracy_or_perf(tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path) -> None:
    int8_path = calibench.calibrate(tiny_cnn_path, tiny_data, subset=8).save(tmp_path / "q.onnx")
    sample = {"input": np.load(tiny_data)["input"][0]}
    result = compare_models(tiny_cnn_path, int8_path, [sample], profile_runs=2, profile_warmup=0)
    assert result.accuracy_drop == {} and result.latency_speedup is None
    data = result.to_dict()
    assert data["accuracy"] is None and data["performance"] is None
    assert "latency" not in comparison_text(result)
    with pytest.raises(ValueError, match="at least one sample"):
        compare_models(tiny_cnn_path, int8_path, [])
