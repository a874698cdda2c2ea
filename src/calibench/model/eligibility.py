"""Which models INT8 calibration refuses, and why (DL Workbench's rules).

* already quantized or FP16 models: calibration starts from FP32;
* NLP models: integer token ids feeding an embedding lookup;
* models calibench produced itself: calibrate the original instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import onnx
import onnx_ir as ir

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
INTEGER_DTYPES = frozenset({ir.DataType.INT32, ir.DataType.INT64})
NLP_INPUT_NAMES = frozenset({"input_ids", "attention_mask", "token_type_ids", "position_ids"})
NOT_FP32 = "INT8 calibration takes an FP32 model"
NOT_NLP = "INT8 calibration is not available for NLP models"


class Precision(str, Enum):
    """The numeric precision a model's weights and arithmetic are stored in."""

    FP32 = "FP32"
    FP16 = "FP16"
    """Also bfloat16: either way a low-precision float model, not calibration's FP32."""
    INT8 = "INT8"


@dataclass(frozen=True)
class Eligibility:
    """What calibration needs to know about a model before it starts, as data: its precision,
    whether calibench derived it, whether it reads token ids, and (first rule broken) why INT8
    calibration refuses it."""

    precision: Precision
    derived: bool
    nlp: bool
    reason: str | None
    """Why INT8 calibration refuses the model (None: it is eligible)."""

    @property
    def eligible(self) -> bool:
        return self.reason is None


def eligibility(model: onnx.ModelProto, name: str = "the model") -> Eligibility:
    """The model's precision and whether (and why not) INT8 calibration takes it."""
    meta = {p.key: p.value for p in model.metadata_props}
    reasons: list[str] = []
    derived = DERIVED_KEY in meta
    if derived:
        reasons.append(
            f"{name} is an optimized model derived from {meta[DERIVED_KEY]}: "
            "only an original FP32 model can be calibrated"
        )
    quantized = next(
        (
            n
            for n in model.graph.node
            if n.op_type in QUANTIZED_OPS or n.op_type.startswith("QLinear")
        ),
        None,
    )
    if quantized is not None:
        reasons.append(
            f"{NOT_FP32}; {name} is already quantized "
            f"(node {quantized.name or quantized.output[0]!r} is {quantized.op_type})"
        )
    half_weight = next(
        (t for t in model.graph.initializer if t.data_type in LOW_PRECISION_FLOATS), None
    )
    if half_weight is not None:
        reasons.append(
            f"{NOT_FP32}; {name} stores weight {half_weight.name!r} as "
            f"{onnx.TensorProto.DataType.Name(half_weight.data_type)}"
        )
    half_input = next(
        (v for v in model.graph.input if v.type.tensor_type.elem_type in LOW_PRECISION_FLOATS),
        None,
    )
    if half_input is not None:
        reasons.append(f"{NOT_FP32}; {name} takes input {half_input.name!r} in FP16")
    token_inputs = _token_id_inputs(model)
    if token_inputs:
        reasons.append(f"{NOT_NLP}; {name} takes token ids ({', '.join(sorted(token_inputs))})")
    if derived or quantized is not None:
        precision = Precision.INT8
    elif half_weight is not None or half_input is not None:
        precision = Precision.FP16
    else:
        precision = Precision.FP32
    return Eligibility(precision, derived, bool(token_inputs), reasons[0] if reasons else None)


def check_eligible(model: onnx.ModelProto, name: str = "the model") -> None:
    """Raise :class:`NotEligibleError` if INT8 calibration must refuse ``model``."""
    reason = eligibility(model, name).reason
    if reason is not None:
        raise NotEligibleError(reason)


def _token_id_inputs(model: onnx.ModelProto) -> set[str]:
    """Integer graph inputs named like token ids, or that reach an embedding Gather."""
    graph = ir.serde.deserialize_graph(model.graph)
    found: set[str] = set()
    for value in graph.inputs:
        if value.is_initializer() or value.dtype not in INTEGER_DTYPES or value.name is None:
            continue
        if value.name.lower() in NLP_INPUT_NAMES:
            found.add(value.name)
            continue
        # Follow the ids through casts and reshapes to a Gather that indexes a float table.
        frontier, seen = [value], set()
        while frontier:
            tensor = frontier.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            for node, index in tensor.uses():
                if node.op_type == "Gather" and index == 1:
                    if _is_table(node.inputs[0]):
                        found.add(value.name)
                elif node.op_type in ("Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten"):
                    frontier.extend(node.outputs)
    return found


def _is_table(value: ir.Value | None) -> bool:
    """A weight matrix (an initializer of rank 2): what an embedding Gather indexes."""
    return value is not None and value.is_initializer() and len(value.shape or ()) == 2
