"""What ONNX Runtime's CPU provider can execute in INT8, by op type.

These lists mirror ORT's QDQ fusion rules (``QDQSelectorActionTransformer``): a DequantizeLinear →
op → QuantizeLinear group of these ops becomes one integer kernel. Keeping them in one place
makes every placement decision and every "why FP32" answer come from the same table, and the
reading of ORT's optimised graph (``runtime.kernels``) uses the same data-movement ops. This
module imports nothing from calibench, so every package can use it.
"""

from __future__ import annotations

WEIGHTED = frozenset({"Conv", "Gemm", "MatMul"})
"""Become QLinearConv / QGemm / QLinearMatMul (Gemm and MatMul may keep a float output)."""

BINARY = frozenset({"Add", "Mul"})
"""Become QLinearAdd / QLinearMul."""

VARIADIC = frozenset({"Concat"})
"""Becomes QLinearConcat."""

UNARY = frozenset({"AveragePool", "GlobalAveragePool", "LeakyRelu", "Sigmoid"})
"""Become QLinearAveragePool, QLinearGlobalAveragePool, QLinearLeakyRelu, QLinearSigmoid."""

PASS_THROUGH = frozenset(
    {
        "Reshape",
        "Flatten",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Slice",
        "Gather",
        "Expand",
        "Tile",
        "MaxPool",
        "Resize",
        "Identity",
    }
)
"""Move or select values without arithmetic: with equal Q/DQ on both sides ORT drops the pair and
runs them on uint8 directly, so they inherit their input's scale and zero point."""

DATA_MOVEMENT = PASS_THROUGH | frozenset(
    {"NhwcMaxPool", "Split", "Concat", "GatherElements", "ReduceMax", "ReduceMin", "Pad"}
)
"""Ops that, found in ORT's *optimised* graph reading 8-bit tensors, compute on those 8 bits
(``runtime.kernels`` counts them as INT8 and passes the input's precision on).

A superset of ``PASS_THROUGH`` on purpose: the two tables were once copies and had drifted, and
they answer different questions. ``PASS_THROUGH`` decides where calibench *writes* quantizers;
this one *reads* what ORT made of them. The extras, checked against ORT 1.32 (DQ → op → Q with
equal parameters):

* ``Split``, ``GatherElements``, ``ReduceMax``, ``ReduceMin``: ORT drops the Q/DQ and runs them
  on uint8, so the reader must know them. They could also join ``PASS_THROUGH``, but that would
  change the quantizers written for every model that has them: a change of its own, with tests;
* ``Pad``: in the probe ORT kept the Q/DQ and ran it in FP32, with constant pads, mode
  ``constant`` (value absent or 0, zero point 0 or 128), ``reflect`` and ``edge`` alike (ORT
  1.32), so it is no ``PASS_THROUGH`` op; when ORT does run it on uint8, it moves data. A zero
  Pad before a Conv is folded into the Conv's pads instead (``passes.fold_pad``);
* ``Concat``: becomes QLinearConcat with its own output scale (see ``VARIADIC``);
* ``NhwcMaxPool``: exists only inside ORT's optimised graph.
"""

FOLDABLE_ACTIVATIONS = frozenset({"Relu", "Clip"})
"""Absorbed by the QuantizeLinear after them when its range lies inside theirs."""

INT8_CAPABLE = WEIGHTED | BINARY | VARIADIC | UNARY

KEPT_FP32_REASONS = {
    "Softmax": "kept in FP32: an 8-bit softmax loses the resolution of small probabilities",
    "ConvTranspose": "ONNX Runtime's CPU provider has no INT8 kernel for ConvTranspose",
}
