"""Each output's batch axis: declared by the batch symbol, measured at batch 1 and 2, or assumed."""

import numpy as np
import onnx
import pytest

from calibench.errors import ModelError
from calibench.runtime.batch_axis import FoundBy, find_batch_axes
from calibench.runtime.session import make_session

HEADER = '<ir_version: 8, opset_import: ["" : 17]>'


def _model(text: str) -> onnx.ModelProto:
    model = onnx.parser.parse_model(HEADER + text)
    onnx.checker.check_model(model)
    return model


def _found(model: onnx.ModelProto, batch: int) -> tuple[dict[str, int | None], dict[str, FoundBy]]:
    name = model.graph.input[0].name
    shape = [d.dim_value or batch for d in model.graph.input[0].type.tensor_type.shape.dim]
    feeds = {name: np.random.default_rng(0).normal(size=shape).astype(np.float32)}
    outputs = make_session(model).run(None, feeds)
    axes = find_batch_axes(model, feeds, outputs)
    # Splitting a real batch gives each sample its own outputs without the batch axis.
    for k, one in enumerate(axes.split([o.name for o in model.graph.output], outputs, batch)):
        for value, whole in zip(model.graph.output, outputs, strict=True):
            axis = axes.axes[value.name]
            expected = whole if axis is None else np.take(whole, k, axis=axis)
            np.testing.assert_array_equal(one[value.name], expected)
    return axes.axes, axes.found_by


# Time first: [N, T, C] in, [T, N, C] out (a CTC reader's layout).
TIME_FIRST = """
agraph (float[{batch}, 5, 3] x) => ({outputs}) {{
    t = Transpose <perm = [1, 0, 2]> (x)
    pooled = ReduceMean <axes = [1], keepdims = 0> (x)
}}
"""


def test_declared_symbol_gives_the_axis() -> None:
    model = _model(TIME_FIRST.format(batch="N", outputs="float[5, N, 3] t, float[N, 3] pooled"))
    axes, found = _found(model, batch=3)
    assert axes == {"t": 1, "pooled": 0}
    assert set(found.values()) == {FoundBy.DECLARED}


def test_fixed_batch_of_one_is_measured_at_batch_two() -> None:
    # Declared wrongly on purpose, as ddddocr's reader declares [1, seqlen] for [T, 1, C].
    model = _model(TIME_FIRST.format(batch="1", outputs="float[1, 5] t, float[1, 3] pooled"))
    axes, found = _found(model, batch=1)
    assert axes == {"t": 1, "pooled": 0}
    assert set(found.values()) == {FoundBy.MEASURED}


def test_wrong_declaration_of_a_dynamic_model_is_not_trusted() -> None:
    model = _model(TIME_FIRST.format(batch="N", outputs="float[N, 5, 3] t, float[N, 3] pooled"))
    axes, found = _found(model, batch=2)
    assert axes == {"t": 1, "pooled": 0}
    assert found == {"t": FoundBy.MEASURED, "pooled": FoundBy.DECLARED}


# A reshape fixed to batch 1 cannot run at batch 2: the axis is assumed from the shapes.
FIXED = """
agraph (float[1, 6] x) => (float[3, 1, 2] t, float[6] flat) {
    shape = Constant <value = int64[3] {3, 1, 2}> ()
    t = Reshape (x, shape)
    flat_shape = Constant <value = int64[1] {6}> ()
    flat = Reshape (x, flat_shape)
}
"""


def test_a_model_that_cannot_take_batch_two_gets_assumed_axes() -> None:
    axes, found = _found(_model(FIXED), batch=1)
    assert axes == {"t": 1, "flat": None}  # [6]: no batch axis, the sample's as it is
    assert set(found.values()) == {FoundBy.ASSUMED}


def test_a_batch_that_does_not_fit_the_axis_is_a_model_error() -> None:
    model = _model(TIME_FIRST.format(batch="N", outputs="float[5, N, 3] t, float[N, 3] pooled"))
    feeds = {"x": np.zeros((2, 5, 3), np.float32)}
    outputs = make_session(model).run(None, feeds)
    axes = find_batch_axes(model, feeds, outputs)
    with pytest.raises(ModelError, match=r"output 't' has shape \[5, 2, 3\] for a batch of 4"):
        axes.split(["t", "pooled"], outputs, 4)


def test_an_output_the_same_for_any_batch_goes_whole_to_every_sample() -> None:
    model = _model("""
    agraph (float[N, 3] x) => (float[N, 3] y, float[2] constant) {
        y = Relu (x)
        constant = Constant <value = float[2] {1.0, 2.0}> ()
    }
    """)
    axes, found = _found(model, batch=3)
    assert axes == {"y": 0, "constant": None}
    assert found == {"y": FoundBy.DECLARED, "constant": FoundBy.MEASURED}
