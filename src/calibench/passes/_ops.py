"""What ONNX Runtime's CPU provider can execute in INT8, by op type.

These lists mirror ORT's QDQ fusion rules (``QDQSelectorActionTransformer``): a DequantizeLinear →
op → QuantizeLinear group of these ops becomes one integer kernel. Keeping them in one place
makes every placement decision and every "why FP32" answer come from the same table.
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

FOLDABLE_ACTIVATIONS = frozenset({"Relu", "Clip"})
"""Absorbed by the QuantizeLinear after them when its range lies inside theirs."""

INT8_CAPABLE = WEIGHTED | BINARY | VARIADIC | UNARY

KEPT_FP32_REASONS = {
    "Softmax": "kept in FP32: an 8-bit softmax loses the resolution of small probabilities",
    "ConvTranspose": "ONNX Runtime's CPU provider has no INT8 kernel for ConvTranspose",
}
