"""SQNR per INT8 layer: finite, tracking calibration quality, and aligned by tensor name."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import calibench
from calibench.report.layer_error import layer_errors, quantized_layers, sqnr_db


@pytest.fixture(scope="module")
def samples(tiny_data: Path) -> list[dict[str, np.ndarray]]:
    return [{"input": x} for x in np.load(tiny_data)["input"][:8]]


@pytest.fixture(scope="module")
def tiny_int8(tiny_cnn_path: Path, tiny_data: Path) -> onnx.ModelProto:
    return calibench.calibrate(tiny_cnn_path, tiny_data, placement="rule").model


def _broken(model: onnx.ModelProto, factor: float = 20.0) -> onnx.ModelProto:
    """Every activation scale multiplied by ``factor``: coarse steps, a 20× too wide range."""
    broken = onnx.ModelProto()
    broken.CopyFrom(model)
    for tensor in broken.graph.initializer:
        is_weight = "::weight" in tensor.name or "::bias" in tensor.name
        if tensor.name.endswith("::scale") and not is_weight and not tensor.dims:
            scaled = numpy_helper.to_array(tensor) * np.float32(factor)
            tensor.CopyFrom(numpy_helper.from_array(scaled.astype(np.float32), tensor.name))
    return broken


def test_each_int8_layer_gets_a_finite_sqnr(
    tiny_cnn_path: Path, tiny_int8: onnx.ModelProto, samples: list[dict[str, np.ndarray]]
) -> None:
    report = layer_errors(tiny_cnn_path, tiny_int8, samples)
    assert report.samples == 8 and report.skipped == []
    names = [row.name for row in report.layers]
    assert names == [node.name for node, _ in quantized_layers(tiny_int8)]
    convs = [n.name for n in tiny_int8.graph.node if n.op_type == "Conv"]
    assert set(convs) <= set(names) and {"/Add", "/fc/Gemm"} <= set(names)
    for row in report.layers:
        assert math.isfinite(row.sqnr_db) and row.sqnr_db > 15, row
    # A Conv's output is read after the Clip it absorbs; the folded Conv writes BN's tensor.
    by_name = report.by_name()
    assert by_name["/c1/c1.0/Conv"].tensor == "/c1/c1.2/Clip_output_0"
    assert by_name["/c3/c3.0/Conv"].tensor == "/c3/c3.0/Conv_output_0"
    assert set(report.outputs) == {"logits"} and report.outputs["logits"] > 15
    assert report.to_dict()["layers"][0]["sqnr_db"] == pytest.approx(report.layers[0].sqnr_db, 1e-3)


def test_good_calibration_beats_a_broken_one(
    tiny_cnn_path: Path, tiny_int8: onnx.ModelProto, samples: list[dict[str, np.ndarray]]
) -> None:
    good = layer_errors(tiny_cnn_path, tiny_int8, samples, max_samples=4)
    bad = layer_errors(tiny_cnn_path, _broken(tiny_int8), samples, max_samples=4)
    assert good.samples == bad.samples == 4
    bad_rows = bad.by_name()
    for row in good.layers:
        assert row.sqnr_db > bad_rows[row.name].sqnr_db + 10, (row, bad_rows[row.name])
    assert good.outputs["logits"] > bad.outputs["logits"] + 10


def test_a_layer_whose_output_is_a_graph_output(tmp_path: Path) -> None:
    """calibench renames such a tensor ``<name>::fp32`` in the QDQ model; it still compares."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(size=(2, 4, 1, 1)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["mid"], name="relu"),
        helper.make_node("Conv", ["mid", "w2"], ["y"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [
            helper.make_tensor_value_info("mid", TensorProto.FLOAT, ["N", 4, 8, 8]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 8, 8]),
        ],
        [w1, w2],
    )
    fp32 = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    fp32.ir_version = 8
    path = tmp_path / "two_outputs.onnx"
    onnx.save(fp32, str(path))
    data = [rng.normal(size=(3, 8, 8)).astype(np.float32) for _ in range(16)]
    int8 = calibench.calibrate(path, data, placement="rule").model
    assert "mid::fp32" in {o for n in int8.graph.node for o in n.output}

    report = layer_errors(path, int8, [{"x": x} for x in data[:4]])
    rows = report.by_name()
    assert rows["conv1"].tensor == "mid"
    assert math.isfinite(rows["conv1"].sqnr_db) and rows["conv1"].sqnr_db > 20
    assert set(report.outputs) == {"mid", "y"}


def test_sqnr_edges() -> None:
    assert sqnr_db(1.0, 0.0) == math.inf
    assert sqnr_db(0.0, 1.0) == -math.inf
    assert sqnr_db(100.0, 1.0) == pytest.approx(20.0)
