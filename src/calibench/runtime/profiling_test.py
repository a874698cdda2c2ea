"""Per-layer times from ORT's profiler, mapped back to the layers of the model file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

import calibench
from calibench.runtime.profiling import (
    CONVERT,
    LAYOUT,
    OTHER,
    LayerResolver,
    _aggregate,
    profile_layers,
)


@pytest.fixture(scope="module")
def tiny_int8(tiny_cnn_path: Path, tiny_data: Path) -> onnx.ModelProto:
    return calibench.calibrate(tiny_cnn_path, tiny_data, subset=16, placement="rule").model


def _graph() -> onnx.ModelProto:
    """x → c1 → bn → relu → (c2 → add ← relu) → pool: a fused chain and a residual Add."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c1_out"], name="c1"),
        helper.make_node("BatchNormalization", ["c1_out", "s", "b", "m", "v"], ["bn_out"], "bn"),
        helper.make_node("Relu", ["bn_out"], ["relu_out"], name="relu"),
        helper.make_node("Conv", ["relu_out", "w"], ["c2_out"], name="c2"),
        helper.make_node("Add", ["relu_out", "c2_out"], ["add_out"], name="add"),
        helper.make_node("MaxPool", ["add_out"], ["y"], name="pool", kernel_shape=[2, 2]),
        helper.make_node("QuantizeLinear", ["y", "qs"], ["y_q"], name="y::QuantizeLinear"),
    ]
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    out = helper.make_tensor_value_info("y_q", TensorProto.UINT8, None)
    return helper.make_model(helper.make_graph(nodes, "g", [value], [out]))


def test_kernel_names_map_back_to_layers() -> None:
    resolve = LayerResolver(_graph()).layer_of
    assert resolve("c1_token_3", "QLinearConv") == "c1"  # QDQ fusion keeps the name
    assert resolve("c1_token_3_token_9", "QLinearConv") == "c1"
    assert resolve("relu_out_nchwc", "Conv") == "c1"  # Conv+BN+Relu named after its output
    assert resolve("bn_out_nchwc", "Conv") == "c1"
    assert resolve("add_out_nchwc", "Conv") == "c2"  # residual Add summed into the later Conv
    assert resolve("y_nchwc", "MaxPool") == "pool"
    assert resolve("pool", "NhwcMaxPool") == "pool"
    assert resolve("fused c2", "FusedConv") == "c2"
    assert resolve("c2/activation", "FusedConv") == "c2"
    assert resolve("Transpose_token_12", "Transpose") == LAYOUT
    assert resolve("ReorderOutput", "ReorderOutput") == LAYOUT
    assert resolve("y::QuantizeLinear", "QuantizeLinear") == CONVERT
    assert resolve("something_else", "Mystery") == OTHER


def test_warmup_runs_are_left_out_and_outliers_trimmed() -> None:
    def run(ts: int) -> dict[str, object]:
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": 900}

    def kernel(ts: int, dur: int, name: str = "c1_token_1") -> dict[str, object]:
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {}}

    events = [run(0), kernel(1, 5000)]  # warm-up: slow, not counted
    for i, dur in enumerate([100, 120, 110, 90, 100, 110, 100, 90, 100, 9000]):
        start = 1000 * (i + 1)
        events += [run(start), kernel(start + 1, dur), kernel(start + 2, 10, "Transpose")]
    times = _aggregate(events, LayerResolver(_graph()), 1, 10, 0.1, 1, 1)
    assert times.runs == 10
    assert times.layers_ms["c1"] == pytest.approx(0.920 / 9)  # 9000 µs trimmed
    assert times.layers_ms[LAYOUT] == pytest.approx(0.010)
    assert times.total_ms == pytest.approx(0.920 / 9 + 0.010)
    assert times.run_ms == pytest.approx(0.9)
    assert times.kernels["c1"] == ["c1_token_1"]


def test_every_conv_is_timed_in_fp32_and_int8(
    tiny_cnn_path: Path, tiny_int8: onnx.ModelProto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fp32 = onnx.load(str(tiny_cnn_path))
    convs = [n.name for n in fp32.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3
    fp32_times = profile_layers(tiny_cnn_path, batch=2, runs=5, warmup=1)
    int8_times = profile_layers(tiny_int8, batch=2, runs=5, warmup=1)
    for times in (fp32_times, int8_times):
        assert times.runs == 5 and times.batch == 2
        for conv in convs:
            assert times.layers_ms[conv] > 0, (conv, times.kernels)
        assert times.total_ms == pytest.approx(sum(times.layers_ms.values()))
        assert 0 < times.total_ms <= times.run_ms * 1.5
        assert OTHER not in times.layers_ms, times.kernels
    # FP32: BatchNorm and the activations are inside the Conv kernels, the Add is summed in.
    assert "/c1/c1.1/BatchNormalization" not in fp32_times.layers_ms
    assert "/Add" not in fp32_times.layers_ms
    assert "/Add" in int8_times.layers_ms  # QLinearAdd
    assert int8_times.layers_ms[CONVERT] > 0  # the input's QuantizeLinear
    assert int8_times.layers_ms[LAYOUT] > 0  # NCHW → NHWC for the integer kernels
    assert list(tmp_path.iterdir()) == []  # profile files removed


def test_inputs_are_repeated_to_the_batch(tiny_cnn_path: Path) -> None:
    import numpy as np

    sample = {"input": np.zeros((3, 32, 32), dtype=np.float32)}
    times = profile_layers(tiny_cnn_path, sample, batch=3, runs=1, warmup=0)
    assert times.batch == 3 and times.runs == 1
    with pytest.raises(ValueError, match="no array"):
        profile_layers(tiny_cnn_path, {"other": sample["input"]}, runs=1, warmup=0)
