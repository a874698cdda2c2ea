"""Write the INT8 model: QuantizeLinear/DequantizeLinear pairs as the plan says.

Rule, for each layer the plan runs in INT8 (every other layer is left as it is):

* each quantized activation tensor gets one QuantizeLinear and one DequantizeLinear per
  consumer (ORT fuses each DQ into the kernel that reads it); a quantized graph output keeps
  its name on the last DequantizeLinear, and the float tensor before it becomes ``<name>::fp32``;
* weights become int8 initializers (symmetric, per output channel) behind a DequantizeLinear;
  the u8u8 scheme stores the same values as uint8 around 128;
* Conv/Gemm biases (plus the bias-correction shift, if any) become int32 with scale
  input_scale × weight_scale;
* constant inputs of INT8 Add/Mul/Concat are stored as uint8.

The numbers come from ``calibench.quant``; the nodes from ``_build``, so every Q/DQ has one form.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes import _build
from calibench.passes.placement import LayerDecision, QuantPlan, Scheme
from calibench.quant import (
    QuantParams,
    bias_scale,
    constant_params,
    quantize_bias,
    quantize_weights,
    uint8_codes,
)


class InsertQDQPass(ir.passes.InPlacePass):
    """Quantize ``model`` as ``plan`` says, with the activation ``params`` per tensor and the
    bias-correction ``shifts`` (FP32 units, per layer) added to the biases."""

    def __init__(
        self,
        plan: QuantPlan,
        params: Mapping[str, QuantParams],
        shifts: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.params = params
        self.shifts = shifts or {}

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        nodes = {node.name: node for node in graph}
        layers = self.plan.int8_layers()
        for decision in layers:
            node = nodes[decision.name]
            if decision.weight_input is not None:
                self._weight_and_bias(graph, node, decision)
            for index, value in enumerate(node.inputs):
                if value is not None and value.name in self.plan.constants:
                    self._constant(graph, node, index, value.name)
        values = _build.values_by_name(graph)
        for tensor in self.plan.tensors:
            self._activation(graph, values[tensor], self.params[tensor])
        _drop_unused_initializers(graph)
        _build.sort_keeping_order(graph)
        return ir.passes.PassResult(model, modified=bool(layers or self.plan.tensors))

    def _activation(self, graph: ir.Graph, value: ir.Value, p: QuantParams) -> None:
        tensor = value.name or ""
        consumers = list(dict.fromkeys(use.node for use in value.uses()))
        scale = _build.initializer(graph, f"{tensor}::scale", np.float32(p.scale))
        zero = _build.initializer(graph, f"{tensor}::zero_point", np.uint8(p.zero_point))
        output_slot = _output_slot(graph, value)
        if output_slot is not None:
            value.name = f"{tensor}::fp32"
        q = _build.quantize(value, scale, zero, f"{tensor}::q")
        q.name = f"{tensor}::QuantizeLinear"
        graph.append(q)
        for k, consumer in enumerate(consumers):
            dq = _build.dequantize(q.outputs[0], scale, zero, f"{tensor}::dq{k}")
            dq.name = f"{tensor}::DequantizeLinear{k}"
            graph.append(dq)
            for index, read in enumerate(consumer.inputs):
                if read is value:
                    consumer.replace_input_with(index, dq.outputs[0])
        if output_slot is not None:
            dq = _build.dequantize(q.outputs[0], scale, zero, tensor)
            dq.name = f"{tensor}::DequantizeLinear_out"
            dq.outputs[0].type, dq.outputs[0].shape = value.type, value.shape
            graph.append(dq)
            graph.outputs[output_slot] = dq.outputs[0]

    def _weight_and_bias(self, graph: ir.Graph, node: ir.Node, decision: LayerDecision) -> None:
        axis = decision.weight_axis
        weight = _constant_array(node.inputs[1]).astype(np.float32)
        q, w_scale = quantize_weights(weight, axis, decision.scheme.weight_bits)
        stem = f"{node.name}::weight"
        if decision.scheme is Scheme.U8U8:
            # The same values as uint8 around 128: ORT then runs its exact u8×u8 kernel.
            u8 = (q.astype(np.int16) + 128).astype(np.uint8)
            stored = _build.initializer(graph, f"{stem}::u8", u8)
            zero = np.full(w_scale.shape, 128, dtype=np.uint8)
        else:
            stored = _build.initializer(graph, f"{stem}::i8", q)
            zero = np.zeros_like(w_scale, dtype=np.int8)
        zero_value = _build.initializer(graph, f"{stem}::zero_point", zero)
        scale_value = _build.initializer(graph, f"{stem}::scale", w_scale)
        self._dequantized_input(graph, node, 1, stored, scale_value, zero_value, stem, axis)

        bias_in = node.inputs[2] if len(node.inputs) > 2 else None
        has_bias = bias_in is not None and bias_in.is_initializer()
        shift = self.shifts.get(node.name or "")
        if not has_bias and shift is None:
            return
        bias = (
            _constant_array(bias_in).astype(np.float64)
            if has_bias and bias_in is not None
            else np.zeros(q.shape[axis], dtype=np.float64)
        )
        if shift is not None:
            bias = bias + shift
        if bias.size != w_scale.size:
            return  # a broadcast Gemm bias: left in float, ORT still fuses the Gemm
        input_scale = self.params[node.inputs[0].name or ""].scale  # type: ignore[union-attr]
        stem = f"{node.name}::bias"
        stored = _build.initializer(
            graph, f"{stem}::i32", quantize_bias(bias, input_scale, w_scale)
        )
        scale_value = _build.initializer(
            graph, f"{stem}::scale", bias_scale(input_scale, w_scale).astype(np.float32)
        )
        zero_value = _build.initializer(
            graph, f"{stem}::zero_point", np.zeros(bias.size, dtype=np.int32)
        )
        if len(node.inputs) < 3:
            node.resize_inputs(3)
        self._dequantized_input(graph, node, 2, stored, scale_value, zero_value, stem, 0)

    def _constant(self, graph: ir.Graph, node: ir.Node, index: int, name: str) -> None:
        values = self.plan.constants[name]
        p = constant_params(values)
        stem = f"{node.name}::{name}"
        stored = _build.initializer(graph, f"{stem}::u8", uint8_codes(values, p).astype(np.uint8))
        scale = _build.initializer(graph, f"{stem}::scale", np.float32(p.scale))
        zero = _build.initializer(graph, f"{stem}::zero_point", np.uint8(p.zero_point))
        self._dequantized_input(graph, node, index, stored, scale, zero, stem, None)

    @staticmethod
    def _dequantized_input(
        graph: ir.Graph,
        node: ir.Node,
        index: int,
        stored: ir.Value,
        scale: ir.Value,
        zero: ir.Value,
        stem: str,
        axis: int | None,
    ) -> None:
        """Feed input ``index`` of ``node`` from a DequantizeLinear of ``stored``."""
        dq = _build.dequantize(stored, scale, zero, f"{stem}::dq", axis)
        dq.name = f"{stem}::DequantizeLinear"
        graph.append(dq)
        node.replace_input_with(index, dq.outputs[0])


def insert_qdq(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: Mapping[str, QuantParams],
    bias_shifts: Mapping[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """The INT8 model of ``fp32`` (a proto, left unchanged): :class:`InsertQDQPass` on a copy."""
    model = ir.from_proto(fp32)
    InsertQDQPass(plan, params, bias_shifts)(model)
    return ir.to_proto(model)


def _constant_array(value: ir.Value | None) -> np.ndarray:
    assert value is not None and value.const_value is not None, "placement checked this"
    return value.const_value.numpy()


def _output_slot(graph: ir.Graph, value: ir.Value) -> int | None:
    for index, output in enumerate(graph.outputs):
        if output is value:
            return index
    return None


def _drop_unused_initializers(graph: ir.Graph) -> None:
    """Drop the float weights the quantized ones replaced (graph outputs count as used)."""
    outputs = set(graph.outputs)
    for name, value in list(graph.initializers.items()):
        if not value.uses() and value not in outputs:
            del graph.initializers[name]
