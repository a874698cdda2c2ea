"""Write the INT8 model: QuantizeLinear/DequantizeLinear pairs as the plan says.

* each quantized activation tensor gets one QuantizeLinear and one DequantizeLinear per
  consumer (ORT fuses each DQ into the kernel that reads it);
* weights become int8 initializers (symmetric, per output channel) behind a DequantizeLinear;
* Conv/Gemm biases become int32 with scale input_scale × weight_scale;
* constant inputs of INT8 Add/Mul/Concat are stored as uint8.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from calibench.calibration.ranges import (
    QuantParams,
    constant_params,
    quantize_bias,
    quantize_weights,
)
from calibench.model.build import add_constant, topological_sort
from calibench.passes.placement import LayerDecision, QuantPlan, Scheme


def insert_qdq(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    bias_shifts: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(fp32)
    graph = model.graph
    weights = {t.name: t for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    outputs = {o.name for o in graph.output}
    bias_shifts = bias_shifts or {}

    for decision in plan.int8_layers():
        node = nodes[decision.name]
        if decision.weight_input is not None:
            _quantize_weight_and_bias(
                graph, node, decision, weights, params, bias_shifts.get(node.name)
            )
        for index, name in enumerate(node.input):
            if name in plan.constants:
                cp = constant_params(plan.constants[name])
                stored = np.clip(np.round(plan.constants[name] / cp.scale) + cp.zero_point, 0, 255)
                q_name = add_constant(graph, f"{node.name}::{name}::u8", stored.astype(np.uint8))
                node.input[index] = _dequantize(graph, q_name, cp, f"{node.name}::{name}")

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for tensor in plan.tensors:
        p = params[tensor]
        source = tensor
        if tensor in outputs:
            source = f"{tensor}::fp32"
            for node in graph.node:
                node.output[:] = [source if o == tensor else o for o in node.output]
        scale = add_constant(graph, f"{tensor}::scale", np.float32(p.scale))
        zero = add_constant(graph, f"{tensor}::zero_point", np.uint8(p.zero_point))
        quantized = f"{tensor}::q"
        graph.node.append(
            helper.make_node(
                "QuantizeLinear",
                [source, scale, zero],
                [quantized],
                name=f"{tensor}::QuantizeLinear",
            )
        )
        for k, node in enumerate(consumers.get(tensor, [])):
            dq = f"{tensor}::dq{k}"
            graph.node.append(
                helper.make_node(
                    "DequantizeLinear",
                    [quantized, scale, zero],
                    [dq],
                    name=f"{tensor}::DequantizeLinear{k}",
                )
            )
            node.input[:] = [dq if i == tensor else i for i in node.input]
        if tensor in outputs:
            graph.node.append(
                helper.make_node(
                    "DequantizeLinear",
                    [quantized, scale, zero],
                    [tensor],
                    name=f"{tensor}::DequantizeLinear_out",
                )
            )
    _drop_unused_initializers(graph)
    topological_sort(graph)
    return model


def _quantize_weight_and_bias(
    graph: onnx.GraphProto,
    node: onnx.NodeProto,
    decision: LayerDecision,
    weights: dict[str, onnx.TensorProto],
    params: dict[str, QuantParams],
    shift: np.ndarray | None,
) -> None:
    axis = decision.weight_axis
    weight = onnx.numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
    q, w_scale = quantize_weights(weight, axis, decision.scheme.weight_bits)
    stem = f"{node.name}::weight"
    if decision.scheme is Scheme.U8U8:
        # The same values as uint8 around 128: ORT then runs its exact u8×u8 kernel.
        stored = f"{stem}::u8"
        add_constant(graph, stored, (q.astype(np.int16) + 128).astype(np.uint8))
        add_constant(graph, f"{stem}::zero_point", np.full(w_scale.shape, 128, dtype=np.uint8))
    else:
        stored = f"{stem}::i8"
        add_constant(graph, stored, q)
        add_constant(graph, f"{stem}::zero_point", np.zeros_like(w_scale, dtype=np.int8))
    add_constant(graph, f"{stem}::scale", w_scale)
    graph.node.append(
        helper.make_node(
            "DequantizeLinear",
            [stored, f"{stem}::scale", f"{stem}::zero_point"],
            [f"{stem}::dq"],
            name=f"{stem}::DequantizeLinear",
            axis=axis,
        )
    )
    node.input[1] = f"{stem}::dq"
    has_bias = len(node.input) > 2 and node.input[2] in weights
    if not has_bias and shift is None:
        return
    bias = (
        onnx.numpy_helper.to_array(weights[node.input[2]]).astype(np.float64)
        if has_bias
        else np.zeros(q.shape[axis], dtype=np.float64)
    )
    if shift is not None:
        bias = bias + shift
    if bias.size != w_scale.size:
        return  # a broadcast Gemm bias: left in float, ORT still fuses the Gemm
    input_scale = params[node.input[0]].scale
    stem = f"{node.name}::bias"
    add_constant(graph, f"{stem}::i32", quantize_bias(bias, input_scale, w_scale))
    bias_scale = (np.float64(input_scale) * w_scale.astype(np.float64)).astype(np.float32)
    add_constant(graph, f"{stem}::scale", bias_scale)
    add_constant(graph, f"{stem}::zero_point", np.zeros(bias.size, dtype=np.int32))
    graph.node.append(
        helper.make_node(
            "DequantizeLinear",
            [f"{stem}::i32", f"{stem}::scale", f"{stem}::zero_point"],
            [f"{stem}::dq"],
            name=f"{stem}::DequantizeLinear",
            axis=0,
        )
    )
    if len(node.input) > 2:
        node.input[2] = f"{stem}::dq"
    else:
        node.input.append(f"{stem}::dq")


def _dequantize(graph: onnx.GraphProto, stored: str, p: QuantParams, stem: str) -> str:
    scale = add_constant(graph, f"{stem}::scale", np.float32(p.scale))
    zero = add_constant(graph, f"{stem}::zero_point", np.uint8(p.zero_point))
    graph.node.append(
        helper.make_node(
            "DequantizeLinear",
            [stored, scale, zero],
            [f"{stem}::dq"],
            name=f"{stem}::DequantizeLinear",
        )
    )
    return f"{stem}::dq"


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input}
    used |= {o.name for o in graph.output}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
