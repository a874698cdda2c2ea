import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes._testing import model_from_text
from calibench.passes.add_reduction_outputs import AddReductionOutputsPass
from calibench.runtime.session import make_session

TWO_LAYERS = """
g (float[N,2,4,4] x) => (float[N,2,4,4] y)
{
  a = Relu(x)
  y = Sigmoid(a)
}"""


def _apply(text: str, pass_: AddReductionOutputsPass, header: str | None = None) -> onnx.ModelProto:
    model = ir.from_proto(
        model_from_text(text) if header is None else model_from_text(text, header)
    )
    result = pass_(model)
    return ir.to_proto(result.model)


def test_reductions_hand_back_two_numbers_per_sample_not_tensors() -> None:
    """What keeps memory flat: ORT returns [batch] minima and maxima, never the activations."""
    adding = AddReductionOutputsPass(["x", "a"])
    augmented = _apply(TWO_LAYERS, adding)
    assert sum(n.op_type.startswith("Reduce") for n in augmented.graph.node) == 4
    x = np.random.default_rng(0).normal(size=(3, 2, 4, 4)).astype(np.float32)
    fetched = make_session(augmented).run(adding.outputs, {"x": x})
    results = dict(zip(adding.outputs, fetched, strict=True))
    assert all(r.shape == (3,) for r in results.values())
    flat = x.reshape(3, -1)
    np.testing.assert_array_equal(results["x::min"], flat.min(axis=1))
    np.testing.assert_array_equal(results["a::max"], np.maximum(flat, 0).max(axis=1))


def test_opset_18_takes_the_axes_as_one_shared_input() -> None:
    adding = AddReductionOutputsPass(["x", "a"])
    augmented = _apply(TWO_LAYERS, adding, '<ir_version: 8, opset_import: ["" : 18]>')
    axes = [t for t in augmented.graph.initializer if t.name.startswith("calibench::axes")]
    assert len(axes) == 1 and list(onnx.numpy_helper.to_array(axes[0])) == [1, 2, 3]
    x = np.ones((2, 2, 4, 4), np.float32)
    assert make_session(augmented).run(["a::min"], {"x": x})[0].shape == (2,)


def test_raw_tensors_become_outputs_once_and_nothing_else_is_added() -> None:
    adding = AddReductionOutputsPass(["a", "y"], raw=True)
    augmented = _apply(TWO_LAYERS, adding)
    assert [o.name for o in augmented.graph.output] == ["y", "a"]  # y was an output already
    assert [n.op_type for n in augmented.graph.node] == ["Relu", "Sigmoid"]


def test_no_tensors_no_change() -> None:
    model = ir.from_proto(model_from_text(TWO_LAYERS))
    assert not AddReductionOutputsPass([])(model).modified
    assert len(model.graph.outputs) == 1 and len(list(model.graph)) == 2


def test_a_graph_input_can_be_fetched_raw() -> None:
    """Histograms read the model's input too: it is quantized like any activation."""
    adding = AddReductionOutputsPass(["x"], raw=True)
    augmented = _apply(TWO_LAYERS, adding)
    x = np.random.default_rng(1).normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(make_session(augmented).run(["x"], {"x": x})[0], x)
