import onnx
import onnx_ir as ir

from calibench.passes.fp32_region import fp32_region, region_parts
from calibench.passes.placement import QuantPlan, plan_quantization
from calibench.passes.reasons import Reason

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'
CHAIN = """
g (float[N,1,8,8] x) => (float[N,4,8,8] y)
<float[4,1,1,1] w1 = {1,1,1,1},
 float[4,4,1,1] w2 = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1},
 float[4,4,1,1] w3 = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{
  a = Conv(x, w1)
  b = Relu(a)
  c = Conv(b, w2)
  d = Relu(c)
  y = Conv(d, w3)
}"""


def _plan() -> QuantPlan:
    return plan_quantization(ir.from_proto(onnx.parser.parse_model(HEADER + CHAIN)))


def _names(plan: QuantPlan) -> list[str]:
    return [d.name for d in plan.layers.values() if d.op_type == "Conv"]


def test_input_conv_goes_fp32_alone_and_keeps_its_output_quantizer() -> None:
    plan = _plan()
    first, second, third = _names(plan)
    changed, region = fp32_region(plan, first, "slower here")
    assert region == [first]
    assert changed.layers[first].code is Reason.MEASURED_SLOWER
    assert changed.layers[first].reason == "slower here"
    assert changed.layers[second].int8 and changed.layers[third].int8
    assert "x" not in changed.tensors  # the model input stays float
    assert "b" in changed.tensors  # the next Conv still reads 8 bits
    assert plan.layers[first].int8  # the plan given is left as it was
    assert region_parts(plan, region) == {first, "Relu_1"}


def test_a_layer_whose_input_stays_quantized_goes_with_its_readers() -> None:
    plan = _plan()
    first, second, third = _names(plan)
    changed, region = fp32_region(plan, second, "slower here")
    # Alone, the middle Conv would sit between a DequantizeLinear and a QuantizeLinear, where
    # ONNX Runtime quantizes its weights anyway: its reader goes to FP32 with it.
    assert region == [second, third]
    assert changed.layers[third].code is Reason.READS_REVERTED
    assert "INT8 measured slower" in (changed.layers[third].reason or "")
    assert changed.layers[first].int8
    assert "d" not in changed.tensors
