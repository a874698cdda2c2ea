"""Where the quantizers go for OpenVINO: on the inputs of the layers it runs in INT8.

The rule-based placement (``passes.placement``) writes what ONNX Runtime fuses: a
DequantizeLinear → op → QuantizeLinear group becomes one integer kernel, so every INT8 layer
gets an *output* quantizer too. OpenVINO's CPU plugin works from the other side: its
low-precision transformations start at the FakeQuantize on a layer's *inputs*, and fuse the
quantizer that follows a layer (the next layer's input quantizer) into its kernel themselves.
NNCF places its quantizers so for OpenVINO: on the inputs of Convolution, MatMul, Add, Multiply,
pooling and Concat, never on activation functions, and a SiLU (x · sigmoid(x)) stays with the
layer before it. Three of ONNX Runtime's rules cost on OpenVINO, and this pass undoes them:

1. An output quantizer that no INT8 layer reads (a Conv before a Sigmoid, a layer that feeds a
   model output): ONNX Runtime needs it for its integer kernel, OpenVINO keeps it as a
   FakeQuantize that only rounds. Dropped: the layer still runs in INT8 (its inputs are
   quantized) and writes float.
2. Sigmoid and LeakyRelu, which ONNX Runtime runs as QLinearSigmoid/QLinearLeakyRelu: OpenVINO
   has no INT8 kernel for activation functions, so their quantizers are conversions. FP32.
3. The Mul of a SiLU (``x · sigmoid(x)``): OpenVINO fuses the whole activation into the
   Convolution before it, in float; quantizing the Mul's inputs would split that fusion. FP32.

And two of NNCF's it adds. The inputs of an INT8 Concat share the Concat output's scale
(whose statistics cover every input), so OpenVINO concatenates u8 as it is instead of
requantizing each input (the price: the range check of the rule-based placement's rule 5
no longer sees the inputs' own ranges; a detector's box/score Concat is in its output tail and
stays FP32 by rule 1 all the same). And a quantizer after a data-movement op (Slice, Reshape,
Transpose, MaxPool…) whose input is float moves up to that input when every reader of the input
is such an op, quantized after it; the ops then run on u8 and share one scale. YOLOX's "Focus"
(four Slices of the input image, concatenated) is the case: its Slices ran in f32 on the full
image, 2.9 ms of 65 ms on ddddocr's detector (batch 1, 1 thread, AMD EPYC, AVX512-VNNI), where
NNCF's ran in u8.

The plan's statistics, schemes and bias correction then proceed as for ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import replace

import onnx

import calibench.ops as ops
from calibench.passes.placement import QuantPlan, prune_quantizers
from calibench.passes.reasons import Reason

NO_INT8_ON_OPENVINO = {
    "Sigmoid": "OpenVINO's CPU plugin runs activation functions in FP32: a quantizer here "
    "would only add conversions",
    "LeakyRelu": "OpenVINO's CPU plugin fuses LeakyRelu into the layer before it, in FP32",
}
SILU = "part of a SiLU (x·sigmoid(x)): OpenVINO fuses it into the layer before, in FP32"


def place_for_openvino(model: onnx.ModelProto, plan: QuantPlan) -> QuantPlan:
    """A copy of ``plan`` with its quantizers where OpenVINO wants them (rules above)."""
    producers = {o: n for n in model.graph.node for o in n.output if o}
    nodes = {n.name: n for n in model.graph.node}
    layers = {name: replace(d) for name, d in plan.layers.items()}
    for decision in layers.values():
        if not decision.int8:
            continue
        words = NO_INT8_ON_OPENVINO.get(decision.op_type)
        if (
            words is None
            and decision.op_type == "Mul"
            and _is_silu(nodes[decision.name], producers)
        ):
            words = SILU
        if words is not None:
            decision.stay_fp32(Reason.NO_INT8_KERNEL, words)
            decision.output_tensor = None
    read = {t for d in layers.values() if d.int8 for t in d.activation_inputs}
    needed = read | {plan.aliases.get(t, t) for t in read}
    for decision in layers.values():
        if decision.int8 and decision.output_tensor not in needed:
            decision.output_tensor = None
    for name, head in plan.folded.items():
        if layers[head].output_tensor is None and layers[name].code is Reason.FOLDED:
            layers[name].stay_fp32(Reason.FOLDED, f"fused into {head} by OpenVINO")
    placed = QuantPlan(
        layers, list(plan.tensors), dict(plan.aliases), dict(plan.constants), dict(plan.folded)
    )
    prune_quantizers(placed)
    _quantize_before_data_movement(model, placed)
    _unify_concat_scales(placed)
    return placed


def _unify_concat_scales(plan: QuantPlan) -> None:
    """The inputs of an INT8 Concat share its output's scale: OpenVINO then concatenates u8
    tensors as they are, where different scales cost a requantization of each input (NNCF
    unifies them the same way). The output's statistics cover every input's range. A Concat
    whose inputs already share a scale with another Concat keeps its own scales."""
    taken: set[str] = set()
    for decision in plan.layers.values():
        out = decision.output_tensor
        if not decision.int8 or decision.op_type != "Concat" or out is None:
            continue
        roots = {plan.aliases.get(t, t) for t in decision.activation_inputs if t in plan.tensors}
        if out in plan.aliases or roots & taken or out in roots:
            continue
        for root in roots:
            for tensor, shared in list(plan.aliases.items()):
                if shared == root:
                    plan.aliases[tensor] = out
            plan.aliases[root] = out
        taken |= roots | {out}


def _quantize_before_data_movement(model: onnx.ModelProto, plan: QuantPlan) -> None:
    """Move quantizers up through data-movement ops whose input is float (see above): the
    ops become INT8 layers that read the input's quantizer and share its scale."""
    producers = {o: n for n in model.graph.node for o in n.output if o}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in dict.fromkeys(node.input):
            readers.setdefault(name, []).append(node)
    constants = {t.name for t in model.graph.initializer}
    quantized = set(plan.tensors)
    moved = True
    while moved:
        moved = False
        for tensor in list(quantized):
            producer = producers.get(tensor)
            if producer is None or producer.op_type not in ops.PASS_THROUGH or not producer.input:
                continue
            source = producer.input[0]
            if source in quantized or source in constants or not source:
                continue
            movers = readers.get(source, [])
            if not all(
                r.op_type in ops.PASS_THROUGH and r.input[0] == source and r.output[0] in quantized
                for r in movers
            ):
                continue
            for mover in movers:
                decision = plan.layers[mover.name]
                decision.int8, decision.code, decision.reason = True, None, None
                decision.activation_inputs = [source]
                decision.output_tensor = mover.output[0]
                root = plan.aliases.get(mover.output[0], mover.output[0])
                plan.aliases = {
                    k: (source if v in (root, mover.output[0]) else v)
                    for k, v in plan.aliases.items()
                }
                plan.aliases[mover.output[0]] = source
            quantized.add(source)
            moved = True
    order = [i.name for i in model.graph.input] + [o for n in model.graph.node for o in n.output]
    plan.tensors = [t for t in order if t in quantized]


def _is_silu(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """``node`` is ``Mul(x, Sigmoid(x))`` (in either order)."""
    if len(node.input) != 2:
        return False
    for this, other in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        sigmoid = producers.get(this)
        if sigmoid is not None and sigmoid.op_type == "Sigmoid" and sigmoid.input[0] == other:
            return True
    return False
