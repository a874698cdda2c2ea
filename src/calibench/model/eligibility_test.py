from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from calibench.errors import NotEligibleError
from calibench.model.eligibility import Eligibility, Precision, check_eligible, eligibility
from calibench.model.load import DERIVED_KEY
from zoo.nlp import build_tiny_transformer


def _model(nodes: str, inputs: str = "float[N,4] x", inits: str = "") -> onnx.ModelProto:
    return onnx.parser.parse_model(
        f'<ir_version: 8, opset_import: ["" : 17]> g ({inputs}) => (float[N,4] y) {inits} '
        f"{{ {nodes} }}"
    )


def test_fp32_model_is_eligible() -> None:
    check_eligible(_model("y = Relu(x)"))


def test_quantized_model_is_refused() -> None:
    model = _model(
        "q = QuantizeLinear(x, s)\n y = DequantizeLinear(q, s)", inits="<float s = {0.1}>"
    )
    with pytest.raises(
        NotEligibleError, match="INT8 calibration takes an FP32 model.*QuantizeLinear"
    ):
        check_eligible(model)


def test_fp16_weights_are_refused() -> None:
    model = _model("y = Add(x, c)", inits="<float c = {1.0}>")
    half = numpy_helper.from_array(np.array([1.0], dtype=np.float16), "c")
    model.graph.initializer[0].CopyFrom(half)
    with pytest.raises(NotEligibleError, match="takes an FP32 model.*FLOAT16"):
        check_eligible(model)


def test_real_nlp_model_is_refused(tmp_path: Path) -> None:
    model = onnx.load(str(build_tiny_transformer(tmp_path / "nlp.onnx")))
    with pytest.raises(NotEligibleError, match="not available for NLP models.*input_ids"):
        check_eligible(model)


def test_embedding_lookup_is_recognised_whatever_the_input_name() -> None:
    table = numpy_helper.from_array(np.zeros((100, 4), np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "tokens"], ["y"])],
        "g",
        [helper.make_tensor_value_info("tokens", onnx.TensorProto.INT64, ["N"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])],
        [table],
    )
    with pytest.raises(NotEligibleError, match="NLP models.*tokens"):
        check_eligible(helper.make_model(graph))


def test_derived_model_is_refused() -> None:
    model = _model("y = Relu(x)")
    helper.set_model_props(model, {DERIVED_KEY: "resnet.onnx"})
    with pytest.raises(NotEligibleError, match="derived from resnet.onnx"):
        check_eligible(model)


def test_eligibility_says_the_precision_as_data() -> None:
    assert eligibility(_model("y = Relu(x)")) == Eligibility(Precision.FP32, False, False, None)
    half = _model("y = Add(x, c)", inits="<float c = {1.0}>")
    half.graph.initializer[0].CopyFrom(
        numpy_helper.from_array(np.array([1.0], dtype=np.float16), "c")
    )
    assert eligibility(half).precision is Precision.FP16
    quantized = _model(
        "q = QuantizeLinear(x, s)\n y = DequantizeLinear(q, s)", inits="<float s = {0.1}>"
    )
    assert eligibility(quantized).precision is Precision.INT8
    derived = _model("y = Relu(x)")
    helper.set_model_props(derived, {DERIVED_KEY: "resnet.onnx"})
    found = eligibility(derived)
    assert (found.precision, found.derived, found.eligible) == (Precision.INT8, True, False)


def test_an_nlp_model_is_fp32_but_not_eligible(tmp_path: Path) -> None:
    found = eligibility(onnx.load(str(build_tiny_transformer(tmp_path / "nlp.onnx"))))
    assert (found.precision, found.nlp, found.eligible) == (Precision.FP32, True, False)
    assert found.reason is not None and found.reason.startswith("INT8 calibration is not")
