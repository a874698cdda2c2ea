import numpy as np

from calibench.passes._testing import model_from_text
from calibench.passes.prepare import prepare_fp32
from calibench.runtime.session import make_session


def test_prepared_model_is_named_folded_and_computes_the_same() -> None:
    original = model_from_text("""
g (float[N,2,4,4] x) => (float[N,2,4,4] y)
<float[2,2,1,1] w = {1,0.5,-0.5,1}, float[2] s = {2,3}, float[2] b = {0,1},
 float[2] m = {0.5,0}, float[2] v = {1,4}>
{
  i = Identity(x)
  c = Conv(i, w)
  n = BatchNormalization(c, s, b, m, v)
  y = Relu(n)
}""")
    fp32, plan = prepare_fp32(original)
    assert [n.op_type for n in fp32.graph.node] == ["Conv", "Relu"]
    assert all(n.name for n in fp32.graph.node) and set(plan.layers) == {
        n.name for n in fp32.graph.node
    }
    x = np.random.default_rng(0).normal(size=(2, 2, 4, 4)).astype(np.float32)
    expected = make_session(original).run(None, {"x": x})[0]
    np.testing.assert_allclose(
        make_session(fp32).run(None, {"x": x})[0], expected, rtol=1e-5, atol=1e-6
    )
