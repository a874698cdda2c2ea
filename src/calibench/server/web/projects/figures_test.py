"""A project's figures in words, each speed with how it was measured."""

from __future__ import annotations

from typing import Any

from calibench.server.web.projects.figures import (
    gain_of,
    int8_name,
    layer_summary,
    recipe_of,
    speed_of,
    when,
)

STAMP = {
    "at": "2026-11-30T13:40:12+00:00",
    "runtime": "ONNX Runtime 1.22.1",
    "cpu": "AMD EPYC 7B13",
    "isa": "vnni",
    "isa_label": "VNNI",
    "timed_with": ["fp32", "int8"],
}


def _side(throughput: float, latency: float) -> dict[str, Any]:
    return {
        "throughput": throughput,
        "latency_ms_median": latency,
        "batch": 8,
        "streams": 2,
        "measured": STAMP,
    }


COMPARISON = {
    "performance": {"fp32": _side(1000.0, 2.0), "int8": _side(1210.0, 1.5)},
    "accuracy": {"metric": "top1", "drop": {"top1": 2.9}},
}


def test_a_speed_says_settings_runtime_cpu_and_when() -> None:
    alone = {
        "throughput": 969.6,
        "latency_ms_median": 1.03,
        "settings": {"batch": 1, "streams": 1, "threads": 2},
        "measured": {**STAMP, "timed_with": []},
    }
    speed = speed_of(alone)
    assert speed is not None
    assert speed.note == (
        "batch 1 × 1 stream, 2 threads each · ONNX Runtime 1.22.1 · AMD EPYC 7B13 (VNNI) · "
        "30 Nov 2026, 13:40 UTC · timed alone"
    )
    assert speed.short == "1 × 1 · ONNX Runtime 1.22.1 · VNNI · 30 Nov 2026, 13:40 UTC"
    # A figure measured before the stamp existed says so instead of inventing one.
    old = speed_of({"throughput": 5.0, "latency_ms_median": 1.0, "settings": {"batch": 2}})
    assert old is not None and "runtime and CPU not recorded · time not recorded" in old.note
    assert speed_of(None) is None and speed_of({}) is None


def test_a_gain_is_the_ratio_of_figures_timed_together() -> None:
    gain = gain_of(COMPARISON, 3, "Fashion CNN", "Fashion CNN INT8 (…)")
    assert gain is not None
    assert gain.words == "1.21× faster" and gain.latency_words == "1.33× faster"
    assert gain.drop_words == "drop 2.90 pt" and gain.metric == "top1"
    assert gain.int8.note.endswith("timed side by side with Fashion CNN")
    assert gain.fp32.note.endswith("timed side by side with Fashion CNN INT8 (…)")
    assert "batch 8 × 2 streams" in gain.int8.note
    slower = {"performance": {"fp32": _side(1000.0, 2.0), "int8": _side(952.4, 2.1)}}
    gain = gain_of(slower, 3, "a", "b")
    assert gain is not None and gain.words == "1.05× slower"
    assert (
        gain_of(None, 3, "a", "b") is None and gain_of({"performance": None}, 3, "a", "b") is None
    )


def test_an_int8_project_is_named_by_its_recipe() -> None:
    config = {
        "method": "accuracy-aware",
        "max_drop": 1,
        "drop_type": "absolute",
        "preset": "mixed",
        "subset": {"percent": 50.0, "count": None},
    }
    name = int8_name("Fashion CNN", config, "fashion calibration")
    assert (
        name == "Fashion CNN INT8 (AccuracyAware max drop 1 pt, mixed, 50% of fashion calibration)"
    )
    counted = {
        "method": "default",
        "preset": "performance",
        "subset": {"percent": None, "count": 300},
    }
    assert int8_name("m", counted, "d" * 80).startswith(
        "m INT8 (Default, performance, 300 samples of "
    )
    recipe = recipe_of(
        {"config": config, "dataset": {"id": 4, "name": "cal"}, "report": {"subset": {"size": 50}}}
    )
    assert recipe is not None
    assert recipe.method == "AccuracyAware, maximum drop 1 pt"
    assert recipe.subset == "50% (50 samples)" and recipe.dataset_id == 4
    assert recipe.words == "AccuracyAware, maximum drop 1 pt, mixed preset, 50% of cal"
    assert recipe_of(None) is None
    assert recipe.placement is None  # calibrated before placement was a choice: as before


def test_the_placement_is_said_beside_the_method_and_the_preset() -> None:
    config = {"method": "default", "preset": "performance", "subset": {"percent": 10.0}}
    measured = {**config, "placement": "measured", "placement_batch": 8}
    rule = {**config, "placement": "rule", "placement_batch": 8}
    cal = {"dataset": {"id": 2, "name": "cal"}}
    shown = recipe_of({**cal, "config": measured})
    assert shown is not None and shown.placement == "placement measured (batch 8)"
    assert shown.words == "Default, performance preset, placement measured (batch 8), 10% of cal"
    threads = recipe_of({**cal, "config": {**measured, "placement_threads": 2}})
    assert threads is not None and threads.placement == "placement measured (batch 8, 2 threads)"
    by_rule = recipe_of({**cal, "config": rule})
    assert by_rule is not None and by_rule.placement == "placement by rule"
    assert by_rule.words == "Default, performance preset, placement by rule, 10% of cal"
    # The name says "by rule" only: measured is the default, and names stay short.
    assert int8_name("m", measured, "cal") == "m INT8 (Default, performance, 10% of cal)"
    assert int8_name("m", rule, "cal") == "m INT8 (Default, performance, by rule, 10% of cal)"


def test_when() -> None:
    assert when("2026-01-05T09:03:00+00:00") == "5 Jan 2026, 09:03 UTC"
    assert when(None) is None and when("yesterday") == "yesterday"


def test_a_cpu_without_fast_int8_says_so_beside_the_figure() -> None:
    perf = {"throughput": 5.0, "latency_ms_median": 1.0, "measured": {**STAMP, "isa": "avx2"}}
    speed = speed_of(perf)
    assert speed is not None and speed.warning is not None
    assert speed.warning.startswith("the CPU that measured it has AVX2 without VNNI: expect little")
    assert speed_of({**perf, "measured": STAMP}).warning is None  # type: ignore[union-attr]


def test_an_accuracy_aware_revert_is_explained_where_it_is_counted() -> None:
    def row(name: str, op: str, precision: str, kernel: str, reason: str | None = None) -> dict:
        return {"name": name, "op_type": op, "precision": precision, "kernel": kernel,
                "reason": reason}  # fmt: skip

    rows = [
        row("/c1", "Conv", "INT8", "QLinearConv"),
        row("/r1", "Relu", "INT8", "(folded)", "folded into the output quantizer of /c1"),
        row("/c2", "Conv", "FP32", "Conv", "reverted: cost 0.80 points"),
        row("/pool", "MaxPool", "FP32", "MaxPool", "reads the output of /c2, reverted by AA"),
        row("/fc", "Gemm", "INT8", "QGemm"),
    ]
    summary = layer_summary(rows, ["/c2"])
    assert summary is not None
    assert (
        summary.words
        == "2 of 3 Conv/Gemm in INT8; 1 activation folded into them; 0 of 1 other layer in INT8"
    )
    assert summary.reverted == (
        "1 layer reverted to FP32; 1 more fell back with it: /pool (reads the output of /c2, "
        "reverted by AA)"
    )
    assert layer_summary(rows) is not None and layer_summary(rows).reverted is None  # type: ignore[union-attr]
    assert layer_summary(None) is None
