import numpy as np
import onnx_ir as ir

from calibench.passes._testing import model_from_text, planned, weights
from calibench.passes.add_bias_twins import AddBiasTwinsPass
from calibench.quant import QuantParams, dequantize_weights, quantize_weights, uint8_codes
from calibench.runtime.session import make_session

CONV_THEN_GEMMS = f"""
g (float[N,3,4,4] x) => (float[N,5] y, float[N,5] z)
<float[4,3,1,1] w = {{{weights((4, 3, 1, 1), 3)}}}, float[4] b = {{0.1,-0.2,0.3,0.05}},
 float[5,64] g1 = {{{weights((5, 64), 4)}}}, float[5] c1 = {{0,0,0,0,0}},
 float[5,64] g2 = {{{weights((5, 64), 5)}}}, int64[2] shape = {{0,-1}}>
{{
  a = Conv(x, w, b)
  f = Reshape(a, shape)
  y = Gemm <transB=1> (f, g1, c1)
  z = Gemm <transB=1> (f, g2)
}}"""


def test_each_conv_and_biased_gemm_gets_one_twin_and_the_mean_error_is_exact() -> None:
    model, plan = planned(model_from_text(CONV_THEN_GEMMS))
    params = {"x": QuantParams(0.02, 128), "f": QuantParams(0.05, 128)}
    conv, gemm_with_bias, _ = (
        d.name for d in plan.layers.values() if d.op_type in ("Conv", "Gemm")
    )
    twins = AddBiasTwinsPass(plan, params)
    result = twins(model)
    assert result.modified
    # the Gemm without a bias has nothing to correct: no twin
    assert list(twins.outputs) == [conv, gemm_with_bias]
    assert sum((n.name or "").endswith("::twin") for n in model.graph) == 2
    x = np.random.default_rng(0).normal(size=(6, 3, 4, 4)).astype(np.float32)
    mean = make_session(ir.to_proto(model)).run([twins.outputs[conv]], {"x": x})[0]
    # fp32 − twin of a 1×1 Conv: the bias cancels, what is left is the quantization error
    w = np.random.default_rng(3).normal(size=(4, 3)).round(3).astype(np.float32)
    w_dq = dequantize_weights(*quantize_weights(w, axis=0), axis=0)
    p = params["x"]
    x_dq = ((uint8_codes(x, p) - p.zero_point) * np.float32(p.scale)).astype(np.float32)
    expected = (np.einsum("oc,nchw->nohw", w, x) - np.einsum("oc,nchw->nohw", w_dq, x_dq)).mean(
        axis=(0, 2, 3)
    )
    np.testing.assert_allclose(mean, expected, atol=1e-5)


def test_layers_without_input_params_or_in_fp32_get_no_twin() -> None:
    model, plan = planned(model_from_text(CONV_THEN_GEMMS))
    nodes_before = len(list(model.graph))
    twins = AddBiasTwinsPass(plan, {})  # no input has quantization parameters
    assert not twins(model).modified
    assert twins.outputs == {} and len(list(model.graph)) == nodes_before
    for decision in plan.layers.values():
        decision.int8 = False
    assert not AddBiasTwinsPass(plan, {"x": QuantParams(0.02, 128)})(model).modified
