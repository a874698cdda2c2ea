import numpy as np
import onnx

from calibench.runtime.timer import CONVERT, OrtTimer, tensor_of

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'
QDQ = """
g (float[N,4] x) => (float[N,4] y)
<float s = {0.1}, uint8 z = {128}, float[4,4] w = {1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1}>
{
  q = QuantizeLinear <axis=1> (x, s, z)
  d = DequantizeLinear <axis=1> (q, s, z)
  y = MatMul(d, w)
}"""


def _model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(HEADER + QDQ)
    names = ("x::QuantizeLinear", "x::DequantizeLinear0", "mm")
    for node, name in zip(model.graph.node, names, strict=True):
        node.name = name
    return model


def test_parts_name_layers_and_the_tensor_each_conversion_converts() -> None:
    timer = OrtTimer({"x": np.ones((2, 4), np.float32)}, batch=2, threads=1)
    first, second = timer.parts([_model(), _model()], runs=4)
    assert all(len(v) == 4 and (v >= 0).all() for v in first.values())
    assert set(first) == set(second)
    # A float MatMul reading a DequantizeLinear: ORT runs the Q and the DQ as kernels of their own.
    assert set(first) == {"mm", f"{CONVERT}x::QuantizeLinear", f"{CONVERT}x::DequantizeLinear0"}
    assert {tensor_of(k) for k in first if k.startswith(CONVERT)} == {"x"}


def test_interleaved_times_whole_runs_of_each_model() -> None:
    timer = OrtTimer({"x": np.ones((1, 4), np.float32)}, batch=1, threads=1)
    result = timer.interleaved({"a": _model(), "b": _model()}, budget_s=0.1)
    assert result.rounds >= 7 and result.latency("a").median_ms > 0
    assert result.paired_speedup("a", "b") > 0
