"""Whole runs timed in a child process on one global thread pool (real ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as h
import pytest

from calibench.runtime.pooled import interleaved_pooled
from calibench.runtime.timer import OrtTimer


def _matmul(size: int) -> onnx.ModelProto:
    weight = onnx.numpy_helper.from_array(np.eye(size, dtype=np.float32), "w")
    graph = h.make_graph(
        [h.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [8, size])],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [8, size])],
        [weight],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_models_are_timed_in_turns_in_a_child_process() -> None:
    feeds = {"x": np.ones((8, 64), np.float32)}
    check = interleaved_pooled({"a": _matmul(64), "b": _matmul(64)}, feeds, 2, budget_s=0.2)
    assert check.rounds >= 7 and set(check.turns) == {"a", "b"}
    assert all(len(turn) == 4 for turn in check.turns["a"])  # 5 runs a turn, the first dropped
    assert 0.2 < check.paired_speedup("a", "b") < 5  # the same model: a ratio near 1


def test_a_multi_threaded_timer_times_whole_runs_pooled_and_a_failure_is_said() -> None:
    timer = OrtTimer({"x": np.ones((8, 64), np.float32)}, 8, 2)
    check = timer.interleaved({"a": _matmul(64), "b": _matmul(64)}, budget_s=0.2)
    assert check.rounds >= 7
    with pytest.raises(RuntimeError, match="the timing process failed"):
        timer.interleaved({"a": _matmul(32)}, budget_s=0.2)  # inputs of the wrong width
