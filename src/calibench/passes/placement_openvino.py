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

The plan's statistics, schemes and bias correction then proceed as for ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import replace

import onnx

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
    return placed


def _is_silu(node: onnx.NodeProto, producers: dict[str, onnx.NodeProto]) -> bool:
    """``node`` is ``Mul(x, Sigmoid(x))`` (in either order)."""
    if len(node.input) != 2:
        return False
    for this, other in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
        sigmoid = producers.get(this)
        if sigmoid is not None and sigmoid.op_type == "Sigmoid" and sigmoid.input[0] == other:
            return True
    return False
