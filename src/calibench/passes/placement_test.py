import onnx
import onnx_ir as ir

from calibench.passes.placement import QuantPlan, plan_quantization, refine_with_ranges

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'


def _plan(text: str) -> QuantPlan:
    return plan_quantization(ir.from_proto(onnx.parser.parse_model(HEADER + text)))


CONV_RELU_POOL_CONV = """
g (float[N,3,8,8] x) => (float[N,4,4,4] y)
<float[4,3,1,1] w1 = {1,1,1,1,1,1,1,1,1,1,1,1},
 float[4,4,1,1] w2 = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{
  a = Conv(x, w1)
  b = Relu(a)
  c = MaxPool <kernel_shape=[2,2], strides=[2,2]> (b)
  y = Conv(c, w2)
}"""


def test_relu_is_folded_and_maxpool_shares_its_input_scale() -> None:
    plan = _plan(CONV_RELU_POOL_CONV)
    convs = [d for d in plan.layers.values() if d.op_type == "Conv"]
    assert all(d.int8 for d in convs)
    relu = next(d for d in plan.layers.values() if d.op_type == "Relu")
    assert relu.reason is not None and relu.reason.startswith("folded into the output quantizer")
    assert convs[0].output_tensor == "b"  # the quantizer sits after the ReLU
    assert plan.aliases == {"c": "b"}  # MaxPool runs on uint8
    assert set(plan.tensors) == {"x", "b", "c", "y"}


def test_decoding_after_the_last_weighted_layer_stays_fp32() -> None:
    plan = _plan("""
g (float[N,2] x) => (float[N,4] y)
<float[2,2] w = {1,1,1,1}>
{
  boxes = MatMul(x, w)
  logits = MatMul(x, w)
  scores = Sigmoid(logits)
  y = Concat <axis=1> (boxes, scores)
}""")
    by_op = {d.op_type: d for d in plan.layers.values()}
    assert by_op["MatMul"].int8
    for op in ("Sigmoid", "Concat"):
        assert not by_op[op].int8 and "decodes the model output" in (by_op[op].reason or "")


def test_softmax_and_model_output_add_stay_fp32_with_reasons() -> None:
    plan = _plan("""
g (float[N,4] x, float[N,4] z) => (float[N,4] y, float[N,4] s)
{
  y = Add(x, z)
  s = Softmax(x)
}""")
    add = next(d for d in plan.layers.values() if d.op_type == "Add")
    softmax = next(d for d in plan.layers.values() if d.op_type == "Softmax")
    assert not add.int8 and add.reason is not None and "decodes the model output" in add.reason
    assert not softmax.int8 and softmax.reason is not None and "softmax" in softmax.reason
    assert plan.tensors == []


def test_concat_of_mismatched_ranges_falls_back_to_fp32() -> None:
    plan = _plan("""
g (float[N,4] boxes, float[N,4] scores) => (float[N,4] y)
<float[8,4] w = {1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1}>
{
  c = Concat <axis=1> (boxes, scores)
  y = MatMul(c, w)
}""")
    concat = next(d for d in plan.layers.values() if d.op_type == "Concat")
    assert concat.int8
    removed = refine_with_ranges(plan, {"boxes": (0.0, 320.0), "scores": (0.0, 1.0), "c": (0, 320)})
    assert not concat.int8
    assert concat.reason is not None and "differ 320×" in concat.reason
    assert "boxes" in removed and "scores" in removed
    assert plan.tensors == ["c"]  # the MatMul's own input stays quantized
