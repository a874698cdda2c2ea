"""OpenVINO's placement: quantizers on the inputs of its INT8 layers, none it would only round
with; checked on the plan and, for a real model, on OpenVINO's runtime graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calibench
from calibench.passes._testing import model_from_text, weights
from calibench.passes.placement_openvino import place_for_openvino
from calibench.passes.prepare import prepare_fp32
from calibench.passes.reasons import Reason

# x → Conv → SiLU (Sigmoid, Mul) → Conv → Relu → Conv → y: a YOLOX-style block.
SILU_BLOCK = f"""
g (float[N,3,8,8] x) => (float[N,4,8,8] y)
<float[4,3,1,1] w1 = {{{weights((4, 3, 1, 1), 1)}}},
 float[4,4,1,1] w2 = {{{weights((4, 4, 1, 1), 2)}}},
 float[4,4,1,1] w3 = {{{weights((4, 4, 1, 1), 3)}}}>
{{
  a = Conv(x, w1)
  s = Sigmoid(a)
  m = Mul(a, s)
  b = Conv(m, w2)
  r = Relu(b)
  y = Conv(r, w3)
}}"""


def test_openvino_placement_quantizes_layer_inputs_only() -> None:
    fp32, rule = prepare_fp32(model_from_text(SILU_BLOCK))
    by_op = {d.op_type: d for d in rule.layers.values()}
    # ONNX Runtime's rule: QLinearSigmoid and QLinearMul, and every INT8 layer's output
    assert by_op["Sigmoid"].int8 and by_op["Mul"].int8
    assert "a" in rule.tensors and "y" in rule.tensors

    plan = place_for_openvino(fp32, rule)
    layers = {d.name: d for d in plan.layers.values()}
    sigmoid = next(d for d in layers.values() if d.op_type == "Sigmoid")
    mul = next(d for d in layers.values() if d.op_type == "Mul")
    assert not sigmoid.int8 and sigmoid.code is Reason.NO_INT8_KERNEL
    assert not mul.int8 and "SiLU" in (mul.reason or "")
    convs = [d for d in layers.values() if d.op_type == "Conv"]
    assert all(d.int8 for d in convs)
    # inputs of the three Convs, nothing else: the SiLU and the model output stay float
    assert set(plan.tensors) == {"x", "m", "r"}
    assert [d.output_tensor for d in convs] == [None, "r", None]
    relu = next(d for d in layers.values() if d.op_type == "Relu")
    assert relu.code is Reason.FOLDED  # still inside the second Conv's quantizer
    # the rule's plan is left as it was
    assert by_op["Sigmoid"].int8 and "a" in rule.tensors


# YOLOX's Focus: slices of the input image, concatenated, then a Conv.
FOCUS = f"""
g (float[N,3,8,8] x) => (float[N,4,4,4] y)
<float[4,12,1,1] w = {{{weights((4, 12, 1, 1), 4)}}},
 int64[1] zero = {{0}}, int64[1] one = {{1}}, int64[1] end = {{8}}, int64[1] two = {{2}},
 int64[1] h = {{2}}, int64[1] v = {{3}}>
{{
  a = Slice(x, zero, end, h, two)
  b = Slice(x, one, end, h, two)
  c = Slice(a, zero, end, v, two)
  d = Slice(b, one, end, v, two)
  e = Slice(a, one, end, v, two)
  f = Slice(b, zero, end, v, two)
  cat = Concat <axis=1> (c, d, e, f)
  y = Conv(cat, w)
}}"""


def test_quantizers_move_up_through_data_movement_to_a_float_input() -> None:
    fp32, rule = prepare_fp32(model_from_text(FOCUS))
    # ONNX Runtime's rule quantizes the Concat's inputs: the Slices run in float
    assert "x" not in rule.tensors and {"c", "d", "e", "f"} <= set(rule.tensors)
    plan = place_for_openvino(fp32, rule)
    assert plan.tensors[0] == "x"
    # one scale, from the Concat's output (whose range covers all its inputs): OpenVINO
    # concatenates u8 as it is
    assert {plan.aliases[t] for t in "abcdefx"} == {"cat"}
    slices = [d for d in plan.layers.values() if d.op_type == "Slice"]
    assert len(slices) == 6 and all(d.int8 and d.code is None for d in slices)
    assert all(d.activation_inputs in (["x"], ["a"], ["b"]) for d in slices)


@pytest.fixture(scope="module")
def fashion_npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input

    images, _ = load_fashion_mnist("train")
    data = tmp_path_factory.mktemp("ovplace") / "cal.npz"
    np.savez(data, input=to_model_input(images[:48]))
    return build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx")), data


def test_calibrate_for_openvino_runs_its_layers_in_int8_there(fashion_npz) -> None:
    pytest.importorskip("openvino")
    model, data = fashion_npz
    # By rule: the test reads that every Conv runs in INT8 (measured placement may keep one FP32).
    result = calibench.calibrate(model, data, runtime="openvino", threads=1, placement="rule")
    report = result.report.to_dict()
    assert report["config"]["runtime"] == "openvino"
    convs = [r for r in report["layers"] if r["op_type"] == "Conv"]
    # the layer table is OpenVINO's: its kernels, in u8/i8
    assert convs and all(r["precision"] == "INT8" and "I8" in r["kernel"] for r in convs)
    assert report["kernels"]["INT8"]["Convolution"] == len(convs)
    assert "FP32" not in report["kernels"] or "Convolution" not in report["kernels"]["FP32"]
