import onnx
import onnx_ir as ir

from calibench.passes.placement import (
    QuantPlan,
    keep_fp32,
    plan_quantization,
    refine_with_ranges,
    revert_layers,
)
from calibench.passes.reasons import Reason

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
    assert concat.code is Reason.CONCAT_RANGES
    assert "boxes" in removed and "scores" in removed
    assert plan.tensors == ["c"]  # the MatMul's own input stays quantized


def test_every_fp32_decision_carries_a_code_with_its_words() -> None:
    plan = _plan(CONV_RELU_POOL_CONV)
    codes = {d.op_type: d.code for d in plan.layers.values()}
    assert codes == {"Conv": None, "Relu": Reason.FOLDED, "MaxPool": Reason.MOVES_DATA}
    assert all((d.code is None) == d.int8 for d in plan.layers.values())
    assert all((d.reason is None) == d.int8 for d in plan.layers.values())


def test_reverting_a_layer_sends_its_readers_and_its_folded_relu_with_it() -> None:
    plan = _plan(CONV_RELU_POOL_CONV)
    first, second = (d.name for d in plan.layers.values() if d.op_type == "Conv")
    relu = next(d.name for d in plan.layers.values() if d.op_type == "Relu")
    reverted = revert_layers(plan, {first: "reverted: cost 1.00 points"})
    layers = reverted.layers
    assert layers[first].code is Reason.REVERTED
    assert layers[first].reason == "reverted: cost 1.00 points"  # the words as given
    assert layers[relu].code is Reason.FOLLOWS_REVERTED
    assert layers[relu].reason == f"follows {first}, reverted to FP32"
    # the second Conv reads the first one's output through the MaxPool: FP32 too
    assert layers[second].code is Reason.READS_REVERTED
    assert layers[second].reason == f"reads the output of {first}, reverted to FP32"
    assert plan.layers[first].int8  # the plan itself is not changed


def test_keep_fp32_is_told_apart_by_its_code_not_its_words() -> None:
    plan = _plan(CONV_RELU_POOL_CONV)
    first = next(d.name for d in plan.layers.values() if d.op_type == "Conv")
    relu = next(d.name for d in plan.layers.values() if d.op_type == "Relu")
    kept = keep_fp32(plan, ("Relu",)).layers  # naming the folded ReLU keeps its layer
    assert kept[first].code is Reason.KEPT_BY_USER
    assert kept[first].reason == "kept FP32 by you (--keep-fp32 Relu)"
    assert kept[relu].reason == f"follows {first}, kept in FP32 by you"
    # words that merely look like the user's do not make a method's revert the user's
    reverted = revert_layers(plan, {first: "kept FP32 by you, or so it says"}).layers
    assert reverted[relu].reason == f"follows {first}, reverted to FP32"
