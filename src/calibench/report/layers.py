"""The layer table: for each layer of a model, what ONNX Runtime runs it in, and why.

Works on any model: an FP32 model, calibench's INT8 model or another tool's QDQ model. Scales and
zero points are read from the Q/DQ around each layer; runtime precision from ORT's optimised
graph (``runtime.kernels``); the reason for an FP32 layer comes from the placement decision when
calibench made the model, else from what ORT did.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from calibench.runtime.kernels import CONVERSIONS, RuntimeNode, runtime_nodes
from calibench.runtime.profiling import LayerResolver

HIDDEN = CONVERSIONS | {"Constant", "Identity"}
ACTIVATIONS = frozenset({"Relu", "Clip"})


@dataclass
class LayerRow:
    name: str
    op_type: str
    precision: str
    """INT8 or FP32, as ONNX Runtime executes the layer."""
    kernel: str
    input_precision: str
    output_precision: str
    """DL Workbench's outputPrecisions: U8 for a layer that hands 8-bit values on."""
    input_scale: float | None = None
    input_zero_point: int | None = None
    output_scale: float | None = None
    output_zero_point: int | None = None
    reason: str | None = None
    scheme: str | None = None
    """For an INT8 Conv/Gemm/MatMul made for a saturating ISA: u8s8, w7, a7 or u8u8."""
    scheme_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


REASONS_KEY = "calibench.reasons"
SCHEMES_KEY = "calibench.schemes"
ISA_KEY = "calibench.isa"


def saved_schemes(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Layer → [scheme, why] as calibench stored them (empty for other models)."""
    return _saved_json(model, SCHEMES_KEY)


def saved_reasons(model: onnx.ModelProto) -> dict[str, str | None]:
    """The placement reasons calibench stored in a model it wrote (empty for other models)."""
    return _saved_json(model, REASONS_KEY)


def _saved_json(model: onnx.ModelProto, key: str) -> dict[str, Any]:
    for prop in model.metadata_props:
        if prop.key == key:
            try:
                loaded = json.loads(prop.value)
            except ValueError:
                return {}
            return loaded if isinstance(loaded, dict) else {}
    return {}


def layer_table(
    model: onnx.ModelProto, reasons: dict[str, str | None] | None = None
) -> tuple[list[LayerRow], list[RuntimeNode]]:
    reasons = reasons or saved_reasons(model)
    schemes = saved_schemes(model)
    runtime = runtime_nodes(model)
    by_name: dict[str, RuntimeNode] = {}
    for kernel in runtime:
        by_name.setdefault(kernel.name, kernel)
    # Kernels ORT renamed while fusing (FusedConv named after its output, NCHWc variants) are
    # traced back to the layer they execute; a name match above wins over this.
    resolver = LayerResolver(model)
    for kernel in runtime:
        if kernel.precision != "CONVERT":
            by_name.setdefault(resolver.layer_of(kernel.name, kernel.kernel), kernel)
    rows = []
    # onnx_ir links every value to its producer and its readers: no maps to build here.
    for node in ir.from_proto(model).graph:
        if node.op_type in HIDDEN:
            continue
        name = node.name or ""
        row = LayerRow(name, node.op_type, "FP32", "-", "FP32", "FP32")
        executed = by_name.get(name)
        if executed is not None:
            row.precision = executed.precision
            row.kernel = executed.kernel
            row.input_precision = executed.input_precision
            row.output_precision = executed.output_precision
        dq = _producer_of_first_input(node)
        if dq is not None and dq.op_type == "DequantizeLinear":
            row.input_scale, row.input_zero_point = _qparams(dq)
        q = _output_quantizer(node)
        if q is not None:
            row.output_scale, row.output_zero_point = _qparams(q)
        planned = reasons.get(name)
        if name in schemes and len(schemes[name]) == 2:
            row.scheme, row.scheme_note = schemes[name]
        if executed is None:
            folded_into = _producer_of_first_input(node)
            if node.op_type in ACTIVATIONS and q is not None and folded_into is not None:
                absorbing = by_name.get(folded_into.name or "")
                row.precision = absorbing.precision if absorbing else "FP32"
                if absorbing is not None:
                    row.input_precision = row.output_precision = absorbing.output_precision
                row.kernel = "(folded)"
                row.reason = planned or f"folded into {folded_into.name}'s output quantizer"
            else:
                row.kernel = "(fused)"
                row.reason = planned or "fused into a neighbouring kernel by ONNX Runtime"
        elif row.precision != "INT8":
            if planned:
                row.reason = planned
            elif reasons and name in reasons:
                row.reason = "ONNX Runtime did not fuse it into an integer kernel"
            else:
                reads_dq = dq is not None and dq.op_type == "DequantizeLinear"
                row.reason = (
                    "ONNX Runtime did not fuse it into an integer kernel"
                    if reads_dq
                    else "no quantizer around it"
                )
        rows.append(row)
    return rows, runtime


def _output_quantizer(node: ir.Node) -> ir.Node | None:
    if not node.outputs:
        return None
    users = [use.node for use in node.outputs[0].uses()]
    if len(users) == 1 and users[0].op_type in ACTIVATIONS and users[0].outputs:
        users = [use.node for use in users[0].outputs[0].uses()]
    for user in users:
        if user.op_type == "QuantizeLinear":
            return user
    return None


def _producer_of_first_input(node: ir.Node) -> ir.Node | None:
    first = node.inputs[0] if node.inputs else None
    return first.producer() if first is not None else None


def _qparams(node: ir.Node) -> tuple[float | None, int | None]:
    """A Q/DQ node's per-tensor scale and zero point (None for per-channel ones)."""
    scale = _initializer(node, 1)
    zero = _initializer(node, 2)
    if scale is None or scale.ndim > 0:
        return None, None
    zp = int(zero) if zero is not None and zero.ndim == 0 else 0
    return float(scale), zp


def _initializer(node: ir.Node, index: int) -> np.ndarray | None:
    value = node.inputs[index] if len(node.inputs) > index else None
    if value is None or not value.is_initializer() or value.const_value is None:
        return None
    return value.const_value.numpy()
