import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes._testing import model_from_text
from calibench.passes.simplify import SimplifyPass
from calibench.runtime.session import make_session

# Pad amounts computed at run time from the input's width, as "same" padding exporters write it.
PADDED = """
g (float[N,2,{h},{w}] x) => (float[N,2,H2,W2] y)
<int64[1] axis = {{3}}, int64[1] one = {{1}}, int64[1] zeros6 = {{6}}>
{{
  s = Shape(x)
  w = Gather(s, axis)
  half = Div(w, w)
  amount = Mul(half, one)
  z = ConstantOfShape <value = int64[1] {{0}}> (zeros6)
  pads = Concat<axis=0>(z, amount, amount)
  dead = Neg(amount)
  y = Pad(x, pads)
}}"""


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _simplified(model: onnx.ModelProto) -> onnx.ModelProto:
    ir_model = ir.from_proto(model)
    SimplifyPass()(ir_model)
    return ir.to_proto(ir_model)


def _same_outputs(a: onnx.ModelProto, b: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, *shape)).astype(np.float32)
        np.testing.assert_array_equal(
            make_session(a).run(None, {"x": x})[0], make_session(b).run(None, {"x": x})[0]
        )


def test_pad_amounts_from_a_static_spatial_dim_fold_to_a_constant() -> None:
    original = model_from_text(PADDED.format(h=4, w=5))
    simplified = _simplified(original)
    assert _ops(simplified) == ["Pad"]
    pads = {i.name: i for i in simplified.graph.initializer}[simplified.graph.node[0].input[1]]
    assert onnx.numpy_helper.to_array(pads).tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    _same_outputs(original, simplified, (2, 4, 5))


def test_a_dynamic_dimension_is_not_assumed() -> None:
    original = model_from_text(PADDED.format(h=4, w="W"))
    simplified = _simplified(original)
    assert "Shape" in _ops(simplified) and "Pad" in _ops(simplified)
    assert "Neg" not in _ops(simplified), "dead nodes still go"
    assert "ConstantOfShape" not in _ops(simplified), "the constant part still folds"


def test_dead_nodes_and_initializers_are_removed() -> None:
    original = model_from_text("""
g (float[N,2] x) => (float[N,2] y)
<float[2] unused = {1,2}, float[2] b = {3,4}>
{
  d = Mul(x, unused)
  y = Add(x, b)
}""")
    simplified = _simplified(original)
    assert _ops(simplified) == ["Add"]
    assert [i.name for i in simplified.graph.initializer] == ["b"]
