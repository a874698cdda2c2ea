"""Every timing carries where, how and when it was measured."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import onnx
import pytest
from onnx import helper

from calibench.runtime.isa import HOST_FLAGS_ENV, Isa
from calibench.workflow.measured import Measurement, measurement, runtime_label
from calibench.workflow.performance import PerfSettings, measure_interleaved


def _relu() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_stamp_names_runtime_cpu_isa_and_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOST_FLAGS_ENV, "avx2")
    at = datetime(2026, 11, 30, 13, 40, 12, tzinfo=timezone.utc)
    stamp = measurement(["fp32", "int8"], at=at)
    assert stamp.at == "2026-11-30T13:40:12+00:00"
    assert stamp.runtime.startswith("ONNX Runtime 1.")
    assert stamp.isa == Isa.AVX2.value and stamp.isa_label == "AVX2 without VNNI"
    assert stamp.timed_with == ("fp32", "int8")
    assert measurement(["alone"]).timed_with == ()  # one model: timed alone
    assert Measurement.from_dict(stamp.to_dict()) == stamp
    assert runtime_label("something-else") == "something-else"


def test_interleaved_timings_are_stamped_with_the_models_timed_together() -> None:
    feeds = {"x": np.ones((1, 4), np.float32)}
    settings = PerfSettings(seconds=0.06, warmup=1)
    timed = measure_interleaved({"a": _relu(), "b": _relu()}, feeds, settings)
    for result in timed.values():
        assert result.measured is not None
        assert result.measured["timed_with"] == ["a", "b"]
        assert result.to_dict()["measured"]["isa"] in {i.value for i in Isa}
