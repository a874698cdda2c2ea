"""Fold a zero, constant Pad into the Conv that reads it.

Rule: ``Conv(Pad(x, pads, 0), W)`` equals ``Conv(x, W)`` with the Pad's spatial amounts added to
the Conv's ``pads``, when the Pad's mode is ``constant``, its value is 0 (or absent), its amounts
are constant, non-negative and zero on the batch and channel axes, it has no ``axes`` input, and
its output feeds only that Conv (``auto_pad`` unset). ONNX Runtime does this for FP32 graphs
(``PadFusion``) but not once Q/DQ surround the Pad: probed on ORT 1.32, DQ → Pad → Q stays in
FP32 whatever the zero point, value or mode. Folded before placement, the padding happens inside
QLinearConv, which pads with the zero point: the same value, 0, in real terms.

EfficientNet-Lite0's "same" padding is exactly this (17 Pads, once ``SimplifyPass`` has made their
amounts constant).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx_ir.passes import common


class FoldPadIntoConvPass(ir.passes.InPlacePass):
    def call(self, model: ir.Model) -> ir.passes.PassResult:
        folded = 0
        for pad in list(model.graph):
            amounts = _foldable_amounts(pad)
            if amounts is None:
                continue
            conv = next(iter(pad.outputs[0].uses())).node
            rank = len(amounts) // 2
            begin, end = amounts[2:rank], amounts[rank + 2 :]
            spatial = rank - 2
            current = conv.attributes.get_ints("pads", [0] * (2 * spatial))
            pads = [int(a) + int(b) for a, b in zip(current, [*begin, *end], strict=True)]
            conv.attributes["pads"] = ir.AttrInt64s("pads", pads)
            conv.replace_input_with(0, pad.inputs[0])
            folded += 1
        if folded:
            common.RemoveUnusedNodesPass()(model)
        return ir.passes.PassResult(model, modified=folded > 0)


def _foldable_amounts(pad: ir.Node) -> np.ndarray | None:
    if pad.op_type != "Pad" or pad.domain not in ("", "ai.onnx") or len(pad.inputs) < 2:
        return None
    if pad.attributes.get_string("mode", "constant") != "constant":
        return None
    if len(pad.inputs) > 3 and pad.inputs[3] is not None:
        return None
    output = pad.outputs[0]
    uses = list(output.uses())
    if output.is_graph_output() or len(uses) != 1:
        return None
    conv = uses[0].node
    if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or uses[0].idx != 0:
        return None
    if conv.attributes.get_string("auto_pad", "NOTSET") != "NOTSET":
        return None
    amounts = _const(pad.inputs[1])
    if amounts is None or amounts.ndim != 1 or len(amounts) < 6 or len(amounts) % 2:
        return None
    value = _const(pad.inputs[2]) if len(pad.inputs) > 2 and pad.inputs[2] is not None else None
    if len(pad.inputs) > 2 and pad.inputs[2] is not None and (value is None or np.any(value != 0)):
        return None
    rank = len(amounts) // 2
    if np.any(amounts < 0) or np.any(amounts[[0, 1, rank, rank + 1]] != 0):
        return None
    return amounts


def _const(value: ir.Value | None) -> np.ndarray | None:
    if value is None or value.const_value is None or value.is_graph_input():
        return None
    return value.const_value.numpy()
