from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes._testing import model_from_text
from calibench.passes.fold_batchnorm import FoldBatchNormPass
from calibench.runtime.session import make_session


def test_folding_removes_every_batchnorm_and_keeps_the_outputs(tiny_cnn_path: Path) -> None:
    original = onnx.load(str(tiny_cnn_path))
    assert sum(n.op_type == "BatchNormalization" for n in original.graph.node) == 3
    model = ir.from_proto(original)
    result = FoldBatchNormPass()(model)
    assert result.modified
    folded = ir.to_proto(model)
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    x = np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype(np.float32)
    expected = make_session(original).run(None, {"input": x})[0]
    got = make_session(folded).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_a_conv_whose_output_is_read_elsewhere_too_is_not_folded() -> None:
    """Folding would change what the second reader sees."""
    text = """
g (float[N,2,4,4] x) => (float[N,2,4,4] y, float[N,2,4,4] z)
<float[2,2,1,1] w = {1,0,0,1}, float[2] s = {2,3}, float[2] b = {0,1},
 float[2] m = {0.5,0}, float[2] v = {1,4}>
{
  c = Conv(x, w)
  y = BatchNormalization(c, s, b, m, v)
  z = Relu(c)
}"""
    model = ir.from_proto(model_from_text(text))
    assert not FoldBatchNormPass()(model).modified
    assert [n.op_type for n in model.graph] == ["Conv", "BatchNormalization", "Relu"]
