import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes._testing import model_from_text, weights
from calibench.passes.fold_pad import FoldPadIntoConvPass
from calibench.runtime.session import make_session

PADDED_CONV = """
g (float[N,2,5,5] x) => (float[N,2,3,3] y)
<int64[8] pads = {{0,0,0,0,0,0,1,1}}, float value = {{{value}}}, float[2,2,3,3] w = {{{w}}}>
{{
  p = Pad <mode = "{mode}"> (x, pads, value)
  y = Conv <strides = [2, 2], pads = [1, 0, 0, 0]> (p, w)
}}"""


def _folded(model: onnx.ModelProto) -> onnx.ModelProto:
    ir_model = ir.from_proto(model)
    FoldPadIntoConvPass()(ir_model)
    return ir.to_proto(ir_model)


def test_a_zero_pad_joins_the_conv_pads_and_computes_the_same() -> None:
    original = model_from_text(PADDED_CONV.format(value=0, mode="constant", w=weights((36,), 1)))
    folded = _folded(original)
    assert [n.op_type for n in folded.graph.node] == ["Conv"]
    attributes = {a.name: a for a in folded.graph.node[0].attribute}
    assert list(onnx.helper.get_attribute_value(attributes["pads"])) == [1, 0, 1, 1]
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, 2, 5, 5)).astype(np.float32)
        np.testing.assert_allclose(
            make_session(folded).run(None, {"x": x})[0],
            make_session(original).run(None, {"x": x})[0],
            atol=1e-6,
        )


def test_a_non_zero_value_or_another_mode_stays() -> None:
    for value, mode in ((1, "constant"), (0, "reflect")):
        original = model_from_text(PADDED_CONV.format(value=value, mode=mode, w=weights((36,), 1)))
        assert [n.op_type for n in _folded(original).graph.node] == ["Pad", "Conv"]
