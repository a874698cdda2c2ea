"""Which models INT8 calibration refuses, and why (DL Workbench's rules).

* already quantized or FP16 models: calibration starts from FP32;
* NLP models: integer token ids feeding an embedding lookup;
* models calibench produced itself: calibrate the original instead.
"""

from __future__ import annotations

import onnx

from calibench.errors import NotEligibleError
from calibench.model.load import DERIVED_KEY

QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "ConvInteger",
        "MatMulInteger",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "QGemm",
        "QAttention",
    }
)
LOW_PRECISION_FLOATS = frozenset({onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16})
INTEGER_TYPES = frozenset({onnx.TensorProto.INT32, onnx.TensorProto.INT64})
NLP_INPUT_NAMES = frozenset({"input_ids", "attention_mask", "token_type_ids", "position_ids"})
NOT_FP32 = "INT8 calibration takes an FP32 model"
NOT_NLP = "INT8 calibration is not available for NLP models"


def check_eligible(model: onnx.ModelProto, name: str = "the model") -> None:
    """Raise :class:`NotEligibleError` if INT8 calibration must refuse ``model``."""
    meta = {p.key: p.value for p in model.metadata_props}
    if DERIVED_KEY in meta:
        raise NotEligibleError(
            f"{name} is an optimized model derived from {meta[DERIVED_KEY]}: "
            "only an original FP32 model can be calibrated"
        )
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS or node.op_type.startswith("QLinear"):
            raise NotEligibleError(
                f"{NOT_FP32}; {name} is already quantized "
                f"(node {node.name or node.output[0]!r} is {node.op_type})"
            )
    for tensor in model.graph.initializer:
        if tensor.data_type in LOW_PRECISION_FLOATS:
            raise NotEligibleError(
                f"{NOT_FP32}; {name} stores weight {tensor.name!r} as "
                f"{onnx.TensorProto.DataType.Name(tensor.data_type)}"
            )
    for value in model.graph.input:
        if value.type.tensor_type.elem_type in LOW_PRECISION_FLOATS:
            raise NotEligibleError(f"{NOT_FP32}; {name} takes input {value.name!r} in FP16")
    token_inputs = _token_id_inputs(model)
    if token_inputs:
        raise NotEligibleError(
            f"{NOT_NLP}; {name} takes token ids ({', '.join(sorted(token_inputs))})"
        )


def _token_id_inputs(model: onnx.ModelProto) -> set[str]:
    """Integer graph inputs named like token ids, or that reach an embedding Gather."""
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found: set[str] = set()
    for value in graph.input:
        if value.name in weights or value.type.tensor_type.elem_type not in INTEGER_TYPES:
            continue
        if value.name.lower() in NLP_INPUT_NAMES:
            found.add(value.name)
            continue
        # Follow the ids through casts and reshapes to a Gather that indexes a float table.
        frontier, seen = [value.name], set()
        while frontier:
            tensor = frontier.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for node in consumers.get(tensor, []):
                if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == tensor:
                    table = weights.get(node.input[0])
                    if table is not None and len(table.dims) == 2:
                        found.add(value.name)
                elif node.op_type in ("Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten"):
                    frontier.extend(node.output)
    return found
