import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes._testing import model_from_text, params_from_data, planned, weights
from calibench.passes.insert_qdq import InsertQDQPass
from calibench.passes.placement import keep_fp32
from calibench.quant import quantize_bias, quantize_weights
from calibench.runtime.kernels import kernel_counts, runtime_nodes
from calibench.runtime.session import make_session

CONV_RELU_CONV = f"""
g (float[N,3,8,8] x) => (float[N,4,8,8] y)
<float[4,3,3,3] w1 = {{{weights((4, 3, 3, 3), 1)}}}, float[4] b1 = {{0.1,-0.2,0.3,0.05}},
 float[4,4,1,1] w2 = {{{weights((4, 4, 1, 1), 2)}}}, float[4] b2 = {{0,0.5,-0.5,0.25}}>
{{
  a = Conv <pads=[1,1,1,1]> (x, w1, b1)
  r = Relu(a)
  c = Conv(r, w2, b2)
  y = Relu(c)
}}"""


def _count(model: onnx.ModelProto, op: str) -> int:
    return sum(n.op_type == op for n in model.graph.node)


def _quantized(text: str, *keep: str) -> tuple[onnx.ModelProto, onnx.ModelProto, dict]:
    fp32 = model_from_text(text)
    model, plan = planned(fp32)
    plan = keep_fp32(plan, keep)
    feeds = {"x": np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)}
    params = params_from_data(fp32, plan, feeds)
    result = InsertQDQPass(plan, params)(model)
    assert result.modified
    return fp32, ir.to_proto(result.model), {"plan": plan, "params": params, "feeds": feeds}


def test_every_planned_tensor_gets_one_quantizer_and_orts_kernels_are_integer() -> None:
    fp32, int8, ctx = _quantized(CONV_RELU_CONV)
    onnx.checker.check_model(int8)
    assert ctx["plan"].tensors == ["x", "r", "y"]  # the input, after each absorbed ReLU
    assert _count(int8, "QuantizeLinear") == 3
    # one DQ per reader of each activation (y's reader is the graph output), plus weights, biases
    assert _count(int8, "DequantizeLinear") == 3 + 2 + 2
    assert [o.name for o in int8.graph.output] == ["y"]  # the output keeps its name
    assert {n.op_type for n in int8.graph.node if "y" in n.output} == {"DequantizeLinear"}
    int8_kernels = kernel_counts(runtime_nodes(int8))["INT8"]
    assert int8_kernels.get("QLinearConv") == 2
    expected = make_session(fp32).run(None, ctx["feeds"])[0]
    got = make_session(int8).run(None, ctx["feeds"])[0]
    assert np.abs(got - expected).max() < 4 * ctx["params"]["y"].scale


def test_weights_and_biases_are_stored_as_the_quantization_math_says() -> None:
    fp32, int8, ctx = _quantized(CONV_RELU_CONV)
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in int8.graph.initializer}
    w1 = onnx.numpy_helper.to_array(next(t for t in fp32.graph.initializer if t.name == "w1"))
    q, scale = quantize_weights(w1, axis=0)
    layer = next(n.name for n in int8.graph.node if n.op_type == "Conv")
    np.testing.assert_array_equal(stored[f"{layer}::weight::i8"], q)
    np.testing.assert_array_equal(stored[f"{layer}::weight::scale"], scale)
    bias = quantize_bias(np.array([0.1, -0.2, 0.3, 0.05]), ctx["params"]["x"].scale, scale)
    np.testing.assert_array_equal(stored[f"{layer}::bias::i32"], bias)
    assert "w1" not in stored and "b1" not in stored  # the float weights are gone


def test_a_layer_kept_in_fp32_is_left_untouched() -> None:
    _, int8, ctx = _quantized(CONV_RELU_CONV, "Conv_2")
    second = next(n for n in int8.graph.node if n.name == "Conv_2")
    # its weight and bias stay float initializers; nothing quantizes its output
    assert list(second.input)[1:] == ["w2", "b2"]
    assert ctx["plan"].tensors == ["x", "r"]
    assert _count(int8, "QuantizeLinear") == 2
    assert not any("Conv_2" in n.name for n in int8.graph.node if n.op_type.endswith("Linear"))


def test_a_plan_without_int8_layers_changes_nothing() -> None:
    model, plan = planned(
        model_from_text("""
g (float[N,4] x) => (float[N,4] y)
{
  y = Softmax(x)
}""")
    )
    before = ir.to_proto(model).SerializeToString()
    result = InsertQDQPass(plan, {})(model)
    assert not result.modified
    assert ir.to_proto(result.model).SerializeToString() == before


def test_a_layer_reading_one_tensor_twice_gets_one_dequantizer() -> None:
    fp32, int8, ctx = _quantized(f"""
g (float[N,3,8,8] x) => (float[N,4,8,8] y)
<float[4,3,1,1] w1 = {{{weights((4, 3, 1, 1), 6)}}},
 float[4,4,1,1] w2 = {{{weights((4, 4, 1, 1), 7)}}}>
{{
  a = Conv(x, w1)
  s = Add(a, a)
  y = Conv(s, w2)
}}""")
    assert "a" in ctx["plan"].tensors
    add = next(n for n in int8.graph.node if n.op_type == "Add")
    assert list(add.input) == ["a::dq0", "a::dq0"]
    assert sum(n.input[0] == "a::q" for n in int8.graph.node) == 1  # no stray second DQ
    expected = make_session(fp32).run(None, ctx["feeds"])[0]
    got = make_session(int8).run(None, ctx["feeds"])[0]
    assert np.abs(got - expected).max() < 4 * ctx["params"]["y"].scale
