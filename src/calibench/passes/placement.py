"""Decide which layers run in INT8 and where the quantizers go.

One decision per layer, with its reason; the layer report shows exactly these reasons, so "why
did this layer stay FP32?" is answered by the object that decided it.

Rules, in the order they apply:
1. an INT8-capable op (see ``calibench.ops``) becomes an INT8 layer unless a check below fails;
   the cheap ops between the last weighted layers and the model outputs (a detector's decoding:
   sigmoids, box/score concatenations) stay FP32, where 8 bits would erase small scores;
2. each float activation input of an INT8 layer is quantized (per tensor, uint8);
3. the output of an INT8 layer is quantized after an absorbable ReLU/Clip, so ORT can fuse
   op + activation + QuantizeLinear into one integer kernel (MatMul and Gemm may keep a float
   output when nothing quantized reads it);
4. a quantized tensor produced by a data-movement op whose input is quantized shares that
   input's scale and zero point (ORT then runs the op on uint8);
5. after statistics, a Concat whose inputs' ranges differ by more than ``CONCAT_RANGE_RATIO``
   falls back to FP32: one 8-bit scale would erase the smaller inputs (the box/score Concat
   of a detector is the classic case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np
import onnx_ir as ir

import calibench.ops as ops
from calibench.errors import ConfigError
from calibench.passes import _build
from calibench.passes.reasons import Reason

CONCAT_RANGE_RATIO = 16.0


class Scheme(str, Enum):
    """How an INT8 weighted layer is stored, which decides the kernel ORT runs it with."""

    U8S8 = "u8s8"
    """uint8 activations × int8 weights (−127..127): the fast kernel; exact only with VNNI."""
    W7 = "w7"
    """int8 weights in 7 bits (−63..63): same kernel, never saturates."""
    A7 = "a7"
    """the input activation in 7 bits (0..127): same kernel, does not saturate within range."""
    U8U8 = "u8u8"
    """uint8 weights (zero point 128): ORT widens both to 16 bits; exact, somewhat slower."""

    @property
    def weight_bits(self) -> int:
        return 7 if self is Scheme.W7 else 8


@dataclass
class LayerDecision:
    name: str
    op_type: str
    int8: bool
    reason: str | None = None
    """Why the layer is not INT8, in words: what the layer report shows and the model stores."""
    code: Reason | None = None
    """The same reason as a code, for the code that acts on it; ``None`` for an INT8 layer."""
    activation_inputs: list[str] = field(default_factory=list)
    weight_input: int | None = None
    weight_axis: int = 0
    output_tensor: str | None = None
    scheme: Scheme = Scheme.U8S8
    scheme_note: str | None = None
    """Why this scheme: the saturation the ISA's kernel showed and what the candidates cost."""

    def stay_fp32(self, code: Reason, words: str) -> None:
        """Keep this layer out of INT8, for the reason ``code``, told as ``words``."""
        self.int8, self.code, self.reason = False, code, words


@dataclass
class QuantPlan:
    layers: dict[str, LayerDecision]
    tensors: list[str]
    """Every activation tensor that gets a QuantizeLinear, in graph order."""
    aliases: dict[str, str]
    """Tensor → the tensor whose quantization parameters it shares."""
    constants: dict[str, np.ndarray]
    """Constant (non-weight) inputs of INT8 layers, quantized per tensor from their values."""
    folded: dict[str, str]
    """Activation node → the layer whose output quantizer absorbs it."""

    def int8_layers(self) -> list[LayerDecision]:
        return [d for d in self.layers.values() if d.int8]


def ensure_node_names(graph: ir.Graph) -> None:
    """Give every node a unique name: the report and ORT's optimised graph refer to them."""
    seen: set[str] = set()
    for index, node in enumerate(graph):
        name = node.name or f"{node.op_type}_{index}"
        while name in seen:
            name = f"{name}_{index}"
        node.name = name
        seen.add(name)


def plan_quantization(model: ir.Model) -> QuantPlan:
    graph = model.graph
    ensure_node_names(graph)
    layers: dict[str, LayerDecision] = {}
    tail = _output_tail(graph)
    for node in graph:
        layers[_n(node)] = _decide(node, tail)

    quantized: set[str] = set()
    constants: dict[str, np.ndarray] = {}
    folded: dict[str, str] = {}
    for node in graph:
        decision = layers[_n(node)]
        if not decision.int8:
            continue
        for index, value in enumerate(node.inputs):
            if value is None or index == decision.weight_input or _is_bias(node, index):
                continue
            if value.const_value is not None:
                constants[_n(value)] = value.const_value.numpy()
                decision.activation_inputs.append(_n(value))
                continue
            quantized.add(_n(value))
            decision.activation_inputs.append(_n(value))
        output = _output_position(node, folded)
        if output is not None:
            decision.output_tensor = _n(output)
            quantized.add(_n(output))

    for node in graph:
        if _n(node) in folded:
            layers[_n(node)].stay_fp32(
                Reason.FOLDED, f"folded into the output quantizer of {folded[_n(node)]}"
            )

    values = _build.values_by_name(graph)
    aliases: dict[str, str] = {}
    for name in quantized:
        producer = values[name].producer() if name in values else None
        if producer is not None and producer.op_type in ops.PASS_THROUGH and producer.inputs:
            source = producer.inputs[0]
            if source is not None and _n(source) in quantized:
                aliases[name] = _n(source)
    for name in list(aliases):
        root = aliases[name]
        while root in aliases:
            root = aliases[root]
        aliases[name] = root

    order = [v.name for v in graph.inputs] + [o.name for n in graph for o in n.outputs if o]
    tensors = [t for t in order if t in quantized]
    return QuantPlan(layers, tensors, aliases, constants, folded)


def refine_with_ranges(plan: QuantPlan, ranges: dict[str, tuple[float, float]]) -> list[str]:
    """Apply rule 5; return the tensors no longer quantized."""
    dropped: list[str] = []
    for decision in plan.layers.values():
        if not decision.int8 or decision.op_type != "Concat":
            continue
        inputs = [ranges[t] for t in decision.activation_inputs if t in ranges]
        spans = [max(abs(lo), abs(hi)) for lo, hi in inputs]
        spans = [s for s in spans if s > 0]
        if len(spans) < 2:
            continue
        ratio = max(spans) / min(spans)
        if ratio > CONCAT_RANGE_RATIO:
            decision.stay_fp32(
                Reason.CONCAT_RANGES,
                f"inputs' ranges differ {ratio:.0f}×: one 8-bit scale would erase the smaller ones",
            )
            if decision.output_tensor is not None:
                dropped.append(decision.output_tensor)
                decision.output_tensor = None
    return prune_quantizers(plan)


def prune_quantizers(plan: QuantPlan) -> list[str]:
    """Drop the quantizers no INT8 layer reads or writes any more; return their tensors."""
    still_read = {t for d in plan.layers.values() if d.int8 for t in d.activation_inputs}
    still_read |= {d.output_tensor for d in plan.layers.values() if d.int8 and d.output_tensor}
    # A tensor read through a data-movement op keeps its root's quantizer, so the op runs on
    # uint8 (only a layer kept FP32 with its output quantizer, ``fp32_region``, needs this).
    still_read |= {plan.aliases[t] for t in still_read if t in plan.aliases}
    removed = [t for t in plan.tensors if t not in still_read]
    plan.tensors = [t for t in plan.tensors if t in still_read]
    plan.aliases = {k: v for k, v in plan.aliases.items() if k in still_read and v in still_read}
    return removed


KEPT_BY_USER = "kept FP32 by you"


def keep_fp32(plan: QuantPlan, patterns: tuple[str, ...] | list[str]) -> QuantPlan:
    """``plan`` with the layers the user named kept in FP32.

    A pattern matches a layer by its exact name, by its op type (``Conv``), or as a regular
    expression over the whole name (``features\\.1[0-9].*``). Each pattern must match at least
    one layer that would otherwise run in INT8 or be folded into one, so that a typo is
    reported instead of silently ignored."""
    if not patterns:
        return plan
    reasons: dict[str, str] = {}
    for pattern in patterns:
        try:
            regex = re.compile(pattern)
        except re.error:
            regex = None
        matched = [
            d
            for d in plan.layers.values()
            if d.name == pattern
            or d.op_type == pattern
            or (regex is not None and regex.fullmatch(d.name) is not None)
        ]
        if not matched:
            examples = ", ".join(d.name for d in list(plan.int8_layers())[:3])
            raise ConfigError(
                f"--keep-fp32 {pattern!r} matches no layer (give a layer name such as "
                f"{examples or 'Conv_0'}, an op type such as Conv, or a regex over the names)"
            )
        hit = False
        for decision in matched:
            # A folded ReLU/Clip runs inside its layer's kernel: keeping it keeps that layer.
            layer = plan.layers.get(plan.folded.get(decision.name, ""), decision)
            if layer.int8:
                reasons[layer.name] = f"{KEPT_BY_USER} (--keep-fp32 {pattern})"
                hit = True
        if not hit:
            names = ", ".join(d.name for d in matched[:3])
            raise ConfigError(
                f"--keep-fp32 {pattern!r} matches only layers that do not run in INT8 anyway "
                f"({names}{'…' if len(matched) > 3 else ''})"
            )
    return revert_layers(plan, reasons, Reason.KEPT_BY_USER)


def revert_layers(
    plan: QuantPlan, reasons: Mapping[str, str], code: Reason = Reason.REVERTED
) -> QuantPlan:
    """A copy of ``plan`` with the named layers back in FP32, each with its reason (in words;
    ``code`` says who reverted them: the user or a method).

    A reverted layer loses its weight and output quantizers. Its input quantizer may stay (its
    producer still needs it), but an INT8 layer reading its output loses its input and goes to
    FP32 too: ONNX Runtime re-quantizes (per tensor) any Conv or Gemm that sits between a
    DequantizeLinear and a QuantizeLinear, so a layer is truly FP32 only with no quantizer
    right after it. The readers keep their own output quantizers, so INT8 resumes after them.
    """
    layers = {name: replace(d) for name, d in plan.layers.items()}
    released: dict[str, str] = {}
    for name, reason in reasons.items():
        decision = layers[name]
        decision.stay_fp32(code, reason)
        if decision.output_tensor is not None:
            released[decision.output_tensor] = name
        decision.output_tensor = None
    # ORT moves a QuantizeLinear up through data-movement ops (QDQ propagation), so a quantizer
    # after a Reshape/MaxPool of the released output would re-quantize the layer all the same.
    for tensor, root in plan.aliases.items():
        if root in released:
            released[tensor] = released[root]
    for decision in layers.values():
        source = next((released[t] for t in decision.activation_inputs if t in released), None)
        if decision.int8 and source is not None:
            decision.stay_fp32(
                Reason.READS_REVERTED, f"reads the output of {source}, {_why_fp32(code)}"
            )
    for decision in layers.values():
        folded_into = plan.folded.get(decision.name)
        if decision.code is Reason.FOLDED and folded_into in reasons:
            decision.stay_fp32(Reason.FOLLOWS_REVERTED, f"follows {folded_into}, {_why_fp32(code)}")
    reverted = QuantPlan(
        layers, list(plan.tensors), dict(plan.aliases), dict(plan.constants), dict(plan.folded)
    )
    prune_quantizers(reverted)
    return reverted


def _why_fp32(code: Reason) -> str:
    if code is Reason.MEASURED_SLOWER:
        return "kept in FP32 because INT8 measured slower"
    return "kept in FP32 by you" if code is Reason.KEPT_BY_USER else "reverted to FP32"


def _n(item: ir.Node | ir.Value) -> str:
    return item.name or ""


def _output_tail(graph: ir.Graph) -> set[str]:
    """Nodes between the last weighted layers and the model outputs: a detector's decoding
    (sigmoids, concatenations of boxes and scores, reshapes). They are cheap, and 8 bits there
    erase small scores, so they stay in FP32."""
    tail: set[str] = set()
    frontier = [v.producer() for v in graph.outputs]
    while frontier:
        node = frontier.pop()
        if node is None or _n(node) in tail or node.op_type in ops.WEIGHTED:
            continue
        tail.add(_n(node))
        frontier.extend(v.producer() for v in node.inputs if v is not None)
    return tail


def _decide(node: ir.Node, tail: set[str] | None = None) -> LayerDecision:
    tail = tail or set()
    in_tail = _n(node) in tail
    op = node.op_type
    decision = LayerDecision(_n(node), op, int8=False)
    if node.domain not in ("", "ai.onnx"):
        decision.stay_fp32(
            Reason.CUSTOM_DOMAIN, f"custom-domain op {node.domain}.{op} stays in FP32"
        )
        return decision
    if op in ops.PASS_THROUGH:
        decision.stay_fp32(
            Reason.MOVES_DATA, "moves data only: runs on uint8 when its input is quantized"
        )
        return decision
    if op in ops.KEPT_FP32_REASONS:
        decision.stay_fp32(Reason.KEPT_FP32_OP, ops.KEPT_FP32_REASONS[op])
        return decision
    if op not in ops.INT8_CAPABLE:
        decision.stay_fp32(
            Reason.NO_INT8_KERNEL, f"ONNX Runtime's CPU provider has no INT8 kernel for {op}"
        )
        return decision
    if any(v is not None and v.dtype not in (None, ir.DataType.FLOAT) for v in _data_inputs(node)):
        decision.stay_fp32(Reason.NON_FLOAT_INPUTS, f"{op} reads non-float tensors")
        return decision
    if op in ops.WEIGHTED:
        problem = _weight_problem(node, decision)
        if problem:
            decision.stay_fp32(Reason.UNSUPPORTED_WEIGHTS, problem)
            return decision

    elif op in ops.BINARY | ops.VARIADIC | ops.UNARY:
        if in_tail:
            decision.stay_fp32(
                Reason.OUTPUT_DECODING,
                "decodes the model output after the last weighted layer: INT8 here would "
                "erase small values for no speed gain",
            )
            return decision
        if all(v is None or v.const_value is not None for v in node.inputs):
            decision.stay_fp32(Reason.CONSTANT_INPUTS, "all its inputs are constants")
            return decision
    decision.int8 = True
    return decision


def _weight_problem(node: ir.Node, decision: LayerDecision) -> str | None:
    op = node.op_type
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if weight is None:
        return f"{op} has no second input"
    if op == "MatMul" and weight.const_value is None:
        return None  # activation × activation: both sides quantized per tensor
    if weight.const_value is None:
        return f"its weights ({weight.name}) are computed at run time, not constant"
    shape = weight.const_value.shape
    if op == "Conv":
        decision.weight_input, decision.weight_axis = 1, 0
    elif op == "Gemm":
        if node.attributes.get_int("transA", 0):
            return "Gemm with transA=1 has no INT8 kernel"
        decision.weight_input = 1
        decision.weight_axis = 0 if node.attributes.get_int("transB", 0) else 1
    else:
        if len(shape) != 2:
            return "MatMul with a weight of rank other than 2 stays in FP32"
        decision.weight_input, decision.weight_axis = 1, 1
    return None


def _is_bias(node: ir.Node, index: int) -> bool:
    return node.op_type in ("Conv", "Gemm") and index == 2


def _data_inputs(node: ir.Node) -> list[ir.Value | None]:
    if node.op_type in ("Conv", "Gemm"):
        return list(node.inputs[:2])
    return list(node.inputs)


def _output_position(node: ir.Node, folded: dict[str, str]) -> ir.Value | None:
    """Where this INT8 layer's output quantizer goes (after an absorbable activation)."""
    if not node.outputs:
        return None
    value = node.outputs[0]
    absorbed: ir.Node | None = None
    uses = list(value.uses())
    if len(uses) == 1 and not value.is_graph_output():
        consumer = uses[0].node
        if consumer.op_type in ops.FOLDABLE_ACTIVATIONS and _clip_floor_ok(consumer):
            absorbed = consumer
            value = consumer.outputs[0]
    if node.op_type in ("Gemm", "MatMul") and not _read_by_int8_candidate(value):
        return None
    if absorbed is not None:
        folded[_n(absorbed)] = _n(node)
    return value


def _clip_floor_ok(node: ir.Node) -> bool:
    """A Clip is absorbed only when its floor is 0 (the quantizer's uint8 floor)."""
    if node.op_type == "Relu":
        return True
    floor = node.inputs[1] if len(node.inputs) > 1 else None
    if floor is None:
        return node.attributes.get_float("min", -3.4e38) == 0.0
    if floor.const_value is None:
        return False
    return float(floor.const_value.numpy()) == 0.0


def _read_by_int8_candidate(value: ir.Value) -> bool:
    return any(use.node.op_type in ops.INT8_CAPABLE for use in value.uses())
