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

import onnx
from onnx import numpy_helper

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
    for node in runtime:
        by_name.setdefault(node.name, node)
    # Kernels ORT renamed while fusing (FusedConv named after its output, NCHWc variants) are
    # traced back to the layer they execute; a name match above wins over this.
    resolver = LayerResolver(model)
    for node in runtime:
        if node.precision != "CONVERT":
            by_name.setdefault(resolver.layer_of(node.name, node.kernel), node)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    rows = []
    for node in graph.node:
        if node.op_type in HIDDEN:
            continue
        row = LayerRow(node.name, node.op_type, "FP32", "-", "FP32", "FP32")
        executed = by_name.get(node.name)
        if executed is not None:
            row.precision = executed.precision
            row.kernel = executed.kernel
            row.input_precision = executed.input_precision
            row.output_precision = executed.output_precision
        dq = producers.get(node.input[0]) if node.input else None
        if dq is not None and dq.op_type == "DequantizeLinear":
            row.input_scale, row.input_zero_point = _qparams(dq, inits)
        q = _output_quantizer(node, consumers)
        if q is not None:
            row.output_scale, row.output_zero_point = _qparams(q, inits)
        planned = reasons.get(node.name)
        if node.name in schemes and len(schemes[node.name]) == 2:
            row.scheme, row.scheme_note = schemes[node.name]
        if executed is None:
            folded_into = _absorbing_layer(node, producers)
            if node.op_type in ACTIVATIONS and q is not None and folded_into is not None:
                absorbing = by_name.get(folded_into.name)
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
            elif reasons and node.name in reasons:
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


def _output_quantizer(
    node: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]
) -> onnx.NodeProto | None:
    if not node.output:
        return None
    users = consumers.get(node.output[0], [])
    if len(users) == 1 and users[0].op_type in ACTIVATIONS:
        users = consumers.get(users[0].output[0], [])
    for user in users:
        if user.op_type == "QuantizeLinear":
            return user
    return None


def _absorbing_layer(
    node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]
) -> onnx.NodeProto | None:
    return producers.get(node.input[0]) if node.input else None


def _qparams(
    node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]
) -> tuple[float | None, int | None]:
    scale = inits.get(node.input[1]) if len(node.input) > 1 else None
    zero = inits.get(node.input[2]) if len(node.input) > 2 else None
    if scale is None or len(scale.dims) > 0:
        return None, None
    zp = int(numpy_helper.to_array(zero)) if zero is not None and len(zero.dims) == 0 else 0
    return float(numpy_helper.to_array(scale)), zp
