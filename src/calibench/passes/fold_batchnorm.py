"""Fold a BatchNormalization into the Conv that feeds it.

Rule: ``BN(Conv(x, W, b))`` equals ``Conv(x, W·k, (b − mean)·k + beta)`` with
``k = gamma / sqrt(var + eps)`` per output channel, when the Conv's output feeds only the BN and
every BN parameter is constant. Quantizing the folded weights is what the runtime will execute.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes import common

from calibench.passes import _build


class FoldBatchNormPass(ir.passes.InPlacePass):
    def call(self, model: ir.Model) -> ir.passes.PassResult:
        folded = 0
        for bn in list(model.graph):
            if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
                continue
            if len(bn.outputs) > 1 and any(o.uses() for o in bn.outputs[1:]):
                continue
            source = bn.inputs[0]
            conv = source.producer() if source is not None else None
            if source is None or conv is None or conv.op_type != "Conv" or len(source.uses()) != 1:
                continue
            params = [_const(v) for v in bn.inputs[1:5]]
            weight = _const(conv.inputs[1])
            bias_in = conv.inputs[2] if len(conv.inputs) > 2 else None
            bias = _const(bias_in) if bias_in is not None else None
            if weight is None or any(p is None for p in params):
                continue
            if bias_in is not None and bias is None:
                continue
            gamma, beta, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
            eps = bn.attributes.get_float("epsilon", 1e-5)
            k = gamma / np.sqrt(var + eps)
            w = weight.astype(np.float64) * k.reshape(-1, *([1] * (weight.ndim - 1)))
            b = bias.astype(np.float64) if bias is not None else np.zeros_like(mean)
            b = (b - mean) * k + beta
            name = conv.name or bn.name
            w_value = _build.initializer(model.graph, f"{name}.weight_folded", w.astype(np.float32))
            b_value = _build.initializer(model.graph, f"{name}.bias_folded", b.astype(np.float32))
            conv.replace_input_with(1, w_value)
            if len(conv.inputs) > 2:
                conv.replace_input_with(2, b_value)
            else:
                conv.resize_inputs(3)
                conv.replace_input_with(2, b_value)
            bn.outputs[0].replace_all_uses_with(conv.outputs[0], replace_graph_outputs=True)
            if bn.outputs[0].is_graph_output():
                conv.outputs[0].name = bn.outputs[0].name
            model.graph.remove(bn, safe=True)
            folded += 1
        if folded:
            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified=folded > 0)


def _const(value: ir.Value | None) -> np.ndarray | None:
    """The constant behind ``value``, looking through Identity nodes (torch exports them)."""
    while value is not None and value.const_value is None:
        producer = value.producer()
        if producer is None or producer.op_type != "Identity":
            return None
        value = producer.inputs[0]
    return None if value is None or value.const_value is None else value.const_value.numpy()
