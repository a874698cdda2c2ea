"""Two models timed side by side: one sample for both, inputs that must match, both stamped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from calibench.errors import CalibenchError
from calibench.workflow.performance import PerfSettings
from calibench.workflow.side_by_side import prepare_pair, time_side_by_side


def _model(path: Path, op: str = "Relu", width: int = 4) -> Path:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", width])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", width])
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_both_models_timed_on_one_sample_and_stamped_together(tmp_path: Path) -> None:
    a, b = _model(tmp_path / "a.onnx"), _model(tmp_path / "b.onnx", "Sigmoid")
    samples = np.arange(12, dtype=np.float32).reshape(3, 4)
    feeds = prepare_pair(a, b, samples)
    assert list(feeds) == ["x"] and feeds["x"].shape == (1, 4)
    np.testing.assert_array_equal(feeds["x"][0], samples[0])

    timed = time_side_by_side(a, b, feeds, PerfSettings(batch=2, streams=1, seconds=0.15))
    assert sorted(timed) == ["a", "b"]
    for result in timed.values():
        assert result.throughput > 0 and result.requests >= 3  # at least one per window
        assert result.settings["batch"] == 2 and result.settings["streams"] == 1
        assert result.measured is not None and result.measured["timed_with"] == ["a", "b"]
    assert timed["a"].measured == timed["b"].measured  # one stamp: one run


def test_models_with_other_inputs_are_refused_in_words(tmp_path: Path) -> None:
    a, wide = _model(tmp_path / "a.onnx"), _model(tmp_path / "wide.onnx", width=8)
    feeds = np.zeros((2, 4), np.float32)
    with pytest.raises(CalibenchError, match=r"other inputs \(x float32 \['N', 8\]\) than"):
        prepare_pair(a, wide, feeds)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.INT64, ["N", 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.INT64, ["N", 4])
    graph = helper.make_graph([helper.make_node("Neg", ["x"], ["y"])], "g", [x], [y])
    other = tmp_path / "ints.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), other)
    with pytest.raises(CalibenchError, match=r"^'B' takes other inputs \(x int64 \['N', 4\]\)"):
        prepare_pair(a, other, feeds, names=("'A'", "'B'"))
