"""Measure what quantization does to each INT8 Conv/Gemm's output, all layers in one run.

Rule: for each INT8 Conv, and each INT8 Gemm with a constant bias, whose input has
quantization parameters and whose weight is an initializer, add a *twin* of the layer that
reads the quantized-then-dequantized copy of the layer's FP32 input and the dequantized INT8
weights, then ``mean(fp32_output − twin_output)`` over every axis but the channel axis, as the
graph output ``<layer>::bc::mean``. Every other layer is left alone: a Gemm without a bias has
nothing to correct (and keeps its float output), FP32 layers are not quantized at all.

Every twin reads the FP32 model's own input to its layer, so the differences are independent
of one another: bias correction computes all of them in one pass over the data.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx_ir as ir

from calibench.passes import _build
from calibench.passes.placement import LayerDecision, QuantPlan
from calibench.quant import QuantParams, dequantize_weights, quantize_weights


class AddBiasTwinsPass(ir.passes.InPlacePass):
    def __init__(self, plan: QuantPlan, params: Mapping[str, QuantParams]) -> None:
        super().__init__()
        self.plan = plan
        self.params = params
        self.outputs: dict[str, str] = {}
        """After the pass ran: layer → the graph output holding its mean difference."""

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        nodes = {node.name: node for node in graph}
        branches = _build.SideBranches(graph)
        self.outputs = {}
        for decision in self.plan.int8_layers():
            node = nodes[decision.name]
            if _measurable(node, decision, self.params):
                mean = self._twin(graph, branches, node, decision)
                graph.outputs.append(mean)
                self.outputs[decision.name] = mean.name or ""
        return ir.passes.PassResult(model, modified=bool(self.outputs))

    def _twin(
        self,
        graph: ir.Graph,
        branches: _build.SideBranches,
        node: ir.Node,
        decision: LayerDecision,
    ) -> ir.Value:
        x, w = node.inputs[0], node.inputs[1]
        assert x is not None and w is not None and w.const_value is not None
        weight = w.const_value.numpy().astype(np.float32)
        q, scale = quantize_weights(weight, decision.weight_axis, decision.scheme.weight_bits)
        stem = f"{node.name}::bc"
        dequantized = _build.initializer(
            graph, f"{stem}::w", dequantize_weights(q, scale, decision.weight_axis)
        )
        p = self.params[x.name or ""]
        s = _build.initializer(graph, f"{stem}::s", np.float32(p.scale))
        z = _build.initializer(graph, f"{stem}::z", np.uint8(p.zero_point))
        xq = _build.quantize(x, s, z, f"{stem}::xq")
        xdq = _build.dequantize(xq.outputs[0], s, z, f"{stem}::x")
        twin = ir.node(
            node.op_type,
            [xdq.outputs[0], dequantized, *node.inputs[2:]],
            {attr.name: attr for attr in node.attributes.values()},
            domain=node.domain,
            outputs=[ir.val(f"{stem}::y")],
            name=f"{stem}::twin",
        )
        difference = ir.node(
            "Sub", [node.outputs[0], twin.outputs[0]], outputs=[ir.val(f"{stem}::d")]
        )
        axes = [0, *range(2, weight.ndim)] if node.op_type == "Conv" else [0]
        mean = _build.reduce(graph, "ReduceMean", difference.outputs[0], f"{stem}::mean", axes)
        branches.add([xq, xdq, twin, difference, mean])
        return mean.outputs[0]


def _measurable(node: ir.Node, decision: LayerDecision, params: Mapping[str, QuantParams]) -> bool:
    if node.op_type not in ("Conv", "Gemm") or decision.weight_input is None:
        return False
    x, w = node.inputs[0], node.inputs[1]
    if x is None or x.name not in params or w is None or not w.is_initializer():
        return False
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    has_bias = bias is not None and bias.is_initializer()
    return node.op_type != "Gemm" or has_bias
