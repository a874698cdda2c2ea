"""An overflow-safe scheme for CPUs whose INT8 kernels saturate, chosen layer by layer.

For each INT8 layer that goes through ORT's u8×s8 GEMM (Conv except depthwise, Gemm, MatMul
with constant weights), on a few calibration samples:

* the error the saturating kernel adds is computed against the exact Q/DQ arithmetic (the
  layer's real uint8 input, from the same model run with graph optimizations off, through the
  numpy model of the kernel in ``runtime.saturation``);
* the candidates are measured against the float layer on the same input: 8-bit weights computed
  exactly (what u8×u8 gives), 7-bit weights, a 7-bit input activation.

The cheapest one that removes the error is kept, in this order: the fast u8×s8 kernel as it is
(nothing came near overflowing), 7-bit weights or a 7-bit input (same kernel; kept when they
cost at most ``TOLERANCE_DB`` of the layer's output SQNR), u8×u8 (exact, but as slow as FP32 on
AVX2). On an ISA whose
kernels are exact nothing is measured and nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import helper

from calibench.config import Preset
from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import LayerDecision, QuantPlan, Scheme
from calibench.quant import QuantParams, params_for_range, quantize_weights, uint8_codes
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.isa import Isa
from calibench.runtime.saturation import (
    INT16_MAX,
    ConvGeometry,
    conv_columns,
    conv_rows,
    saturation_error,
)
from calibench.runtime.session import make_session

SAMPLES = 16
"""Calibration samples the per-layer measurements use."""
TOLERANCE_DB = 3.0
"""How much output SQNR a 7-bit candidate may cost against exact 8 bits and still be kept.
Generous on purpose: on AVX2, ORT's u8×u8 kernel executes as many instructions as FP32 (92.5 M
for MobileNetV2 against 78 M for u8×s8, counted with callgrind), while 7-bit weights on every
GEMM layer cost MobileNetV2 0.4 points of agreement against u8×u8 on 500 held-out crops."""
HEADROOM = 0.75
"""The fast kernel stays only if no pair of products came above this share of the 16-bit
limit on the measured samples: other inputs reach further than calibration samples do."""


@dataclass
class LayerOverflow:
    name: str
    op_type: str
    outputs: int = 0
    saturated: int = 0
    """Outputs the saturating kernel changed, on the measured samples."""
    signal: float = 0.0
    saturation_noise: float = 0.0
    noise: dict[str, float] = field(default_factory=dict)
    """Candidate → squared error against the float layer on the same input."""
    a7_saturated: int = 0
    peak: int = 0
    """Largest |pair of products| seen (the 16-bit limit is 32 767)."""
    scheme: str = Scheme.U8S8.value
    note: str = ""

    @property
    def saturation_sqnr(self) -> float:
        return _db(self.signal, self.saturation_noise)

    def sqnr(self, candidate: str) -> float:
        return _db(self.signal, self.noise.get(candidate, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "op_type": self.op_type,
            "saturated_fraction": self.saturated / max(self.outputs, 1),
            "peak_pair_sum": self.peak,
            "saturation_sqnr_db": _finite(self.saturation_sqnr),
            "candidates_sqnr_db": {c: _finite(self.sqnr(c)) for c in self.noise},
            "scheme": self.scheme,
            "note": self.note,
        }


def gemm_layers(
    fp32: onnx.ModelProto, plan: QuantPlan, modelled: bool = True
) -> list[LayerDecision]:
    """The INT8 layers that go through the u8×s8 GEMM (depthwise Convs do not): those the
    kernel model covers (2-D Convs, Gemm, MatMul), or with ``modelled=False`` the others (1-D
    and 3-D Convs), which get the exact u8×u8 scheme unmeasured."""
    shapes = {t.name: tuple(t.dims) for t in fp32.graph.initializer}
    nodes = {n.name: n for n in fp32.graph.node}
    chosen = []
    for decision in plan.int8_layers():
        if decision.weight_input is None or not decision.activation_inputs:
            continue
        node = nodes[decision.name]
        shape = shapes.get(node.input[1])
        if shape is None:
            continue
        covered = True
        if decision.op_type == "Conv":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if group > 1 and group == shape[0] and shape[1] == 1:
                continue  # depthwise: ORT's depthwise kernel is exact
            covered = len(shape) == 4
        if covered == modelled:
            chosen.append(decision)
    return chosen


def measure_overflow(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    ranges: dict[str, tuple[float, float]],
    preset: Preset,
    reader: BatchReader,
    indices: Sequence[int],
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    candidates: bool = True,
    memory_limit: int | None = None,
) -> dict[str, LayerOverflow]:
    """Per GEMM layer: the saturation error and the candidates' errors on ``indices``.

    With ``candidates=False`` only the saturation of the plan as it stands is measured (each
    layer with its own scheme; u8×u8 layers cannot saturate and are left out)."""
    layers = [d for d in gemm_layers(fp32, plan) if candidates or d.scheme is not Scheme.U8U8]
    if not layers:
        return {}
    model = insert_qdq(fp32, plan, params)
    graph_outputs = {o.name for o in fp32.graph.output}
    wanted: dict[str, int] = {}
    for decision in layers:
        x = decision.activation_inputs[0]
        float_name = f"{x}::fp32" if x in graph_outputs else x
        wanted[float_name] = onnx.TensorProto.FLOAT
        wanted[f"{x}::q"] = onnx.TensorProto.UINT8
    present = {o.name for o in model.graph.output}
    for name, elem in wanted.items():
        if name not in present:
            model.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    session = make_session(
        model, threads=threads, optimization=ort.GraphOptimizationLevel.ORT_DISABLE_ALL, lean=True
    )
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in fp32.graph.initializer}
    nodes = {n.name: n for n in fp32.graph.node}
    found = {d.name: LayerOverflow(d.name, d.op_type) for d in layers}
    names = list(wanted)
    reader = fit_reader(reader, indices, lambda feeds: session.run(names, feeds), memory_limit)
    prepared: dict[tuple[str, tuple[int, ...]], _WeightSide] = {}
    seven_bit = {
        d.activation_inputs[0]: params_for_range(*ranges[x], preset, bits=7)
        for d in layers
        if (x := d.activation_inputs[0]) in ranges
    }
    done = 0
    for batch_indices, feeds in reader.batches(indices):
        values = dict(zip(names, session.run(names, feeds), strict=True))
        for decision in layers:
            x = decision.activation_inputs[0]
            float_name = f"{x}::fp32" if x in graph_outputs else x
            for row in range(len(batch_indices)):
                _measure_layer(
                    found[decision.name],
                    decision,
                    nodes[decision.name],
                    weights,
                    values[f"{x}::q"][row : row + 1],
                    values[float_name][row : row + 1],
                    params[x],
                    seven_bit.get(x, params[x]),
                    prepared,
                    candidates,
                )
        done += len(batch_indices)
        if progress:
            progress(done, len(indices))
    return found


def choose_schemes(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    ranges: dict[str, tuple[float, float]],
    preset: Preset,
    measured: dict[str, LayerOverflow],
    isa: Isa,
) -> dict[str, QuantParams]:
    """Set each GEMM layer's scheme in ``plan``; return the params (7-bit inputs applied).

    ``measured`` gets an entry for every GEMM layer, the unmodelled ones included."""
    params = dict(params)
    for decision in gemm_layers(fp32, plan, modelled=False):
        decision.scheme = Scheme.U8U8
        decision.scheme_note = (
            f"{decision.op_type} of this shape is not covered by the model of the {isa.label} "
            "kernel: uint8 weights, exact"
        )
        measured[decision.name] = LayerOverflow(
            decision.name, decision.op_type, scheme="u8u8", note=decision.scheme_note
        )
    readers = _reader_counts(fp32)
    shared = set(plan.aliases) | set(plan.aliases.values())
    clip_tops = _clip_tops(fp32)
    for name, found in measured.items():
        decision = plan.layers[name]
        if decision.scheme_note is not None:
            continue  # not modelled, set above
        exact = found.sqnr("w8")
        if found.saturated == 0 and found.peak <= HEADROOM * INT16_MAX:
            decision.scheme = Scheme.U8S8
            found.note = (
                f"no pair of products overflowed on the {isa.label} kernel (largest "
                f"{100 * found.peak / INT16_MAX:.0f}% of the 16-bit limit)"
            )
        else:
            x = decision.activation_inputs[0]
            options = {"w7": found.sqnr("w7")}
            if (
                readers.get(x, 0) == 1
                and x not in shared
                and found.a7_saturated == 0
                and _keeps_clip_folded(clip_tops, x, params_for_range(*ranges[x], preset, bits=7))
            ):
                options["a7"] = found.sqnr("a7")
            best = max(options, key=lambda c: options[c])
            lost = (
                f"{100 * found.saturated / max(found.outputs, 1):.2g}% of outputs saturated"
                if found.saturated
                else f"pairs of products reached {100 * found.peak / INT16_MAX:.0f}% of the "
                "16-bit limit"
            )
            if options[best] >= exact - TOLERANCE_DB:
                decision.scheme = Scheme(best)
                what = "7-bit weights" if best == "w7" else "7-bit input"
                found.note = (
                    f"{lost} on the {isa.label} kernel; {what}: {options[best]:.1f} dB "
                    f"vs {exact:.1f} dB exact"
                )
                if best == "a7":
                    params[x] = params_for_range(*ranges[x], preset, bits=7)
            else:
                decision.scheme = Scheme.U8U8
                costs = " and ".join(
                    f"{'7-bit weights' if c == 'w7' else 'a 7-bit input'} {exact - v:.1f} dB"
                    for c, v in options.items()
                )
                found.note = (
                    f"{lost} on the {isa.label} kernel; {costs} would cost too much: "
                    "uint8 weights, exact"
                )
        found.scheme = decision.scheme.value
        decision.scheme_note = found.note
    return params


def _reader_counts(fp32: onnx.ModelProto) -> dict[str, int]:
    """Activation tensor → how many node inputs and graph outputs read it (from onnx_ir)."""
    graph = ir.from_proto(fp32).graph
    values = [*graph.inputs, *(v for node in graph for v in node.outputs)]
    return {v.name or "": len(v.uses()) + sum(o is v for o in graph.outputs) for v in values}


def _clip_tops(fp32: onnx.ModelProto) -> dict[str, float | None]:
    """Output tensor → the maximum of the Clip that writes it (None: no maximum)."""
    inits = {t.name: t for t in fp32.graph.initializer}
    tops: dict[str, float | None] = {}
    for node in fp32.graph.node:
        if node.op_type != "Clip" or not node.output:
            continue
        top: float | None = None
        if len(node.input) > 2 and node.input[2] in inits:
            top = float(onnx.numpy_helper.to_array(inits[node.input[2]]))
        for attribute in node.attribute:
            if attribute.name == "max":
                top = attribute.f
        tops[node.output[0]] = top
    return tops


def _keeps_clip_folded(clip_tops: dict[str, float | None], tensor: str, p7: QuantParams) -> bool:
    """ORT folds a Clip into the quantizer after it only when the quantizer's range lies within
    the Clip's: a 7-bit input spans twice the calibrated range, which can pass a ReLU6's 6 and
    leave the Clip, and the layer before it, in float."""
    top = clip_tops.get(tensor)
    return top is None or p7.high <= top


_WeightSide = tuple[
    ConvGeometry | None, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]


def _weight_side(
    decision: LayerDecision,
    node: onnx.NodeProto,
    weights: dict[str, np.ndarray],
    input_shape: tuple[int, ...],
) -> _WeightSide:
    """A layer's float, 8-bit and 7-bit weight columns, their scales and bias, per group."""
    weight = weights[node.input[1]].astype(np.float32)
    bias = weights.get(node.input[2]) if len(node.input) > 2 else None
    axis = decision.weight_axis
    q8, s8 = quantize_weights(weight, axis, decision.scheme.weight_bits)
    q7, s7 = quantize_weights(weight, axis, 7)
    geometry: ConvGeometry | None = None
    if decision.op_type == "Conv":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        geometry = ConvGeometry.from_attributes(
            attrs, weight.shape, (input_shape[2], input_shape[3])
        )
        cols_f = conv_columns(weight, geometry.group)
        cols8 = conv_columns(q8, geometry.group)
        cols7 = conv_columns(q7, geometry.group)
        per = weight.shape[0] // geometry.group
        scales8 = s8.reshape(geometry.group, per)
        scales7 = s7.reshape(geometry.group, per)
    else:
        transposed = decision.op_type == "Gemm" and axis == 0
        cols_f = (weight.T if transposed else weight)[None]
        cols8 = (q8.T if transposed else q8)[None]
        cols7 = (q7.T if transposed else q7)[None]
        scales8, scales7 = s8[None], s7[None]
    outputs = cols_f.shape[0] * cols_f.shape[2]
    per_bias = (
        np.broadcast_to(bias.astype(np.float64).reshape(-1), (outputs,))
        if bias is not None and bias.size == outputs
        else np.zeros(outputs)
    ).reshape(cols_f.shape[0], -1)
    return geometry, cols_f, cols8, cols7, scales8, scales7, per_bias


def _measure_layer(
    found: LayerOverflow,
    decision: LayerDecision,
    node: onnx.NodeProto,
    weights: dict[str, np.ndarray],
    x_q: np.ndarray,
    x_float: np.ndarray,
    p8: QuantParams,
    p7: QuantParams,
    prepared: dict[tuple[str, tuple[int, ...]], _WeightSide],
    candidates: bool = True,
) -> None:
    """``p8``: the input's params as planned; ``p7``: its 7-bit candidate. The weight side,
    the same for every sample, is prepared once per layer and input shape in ``prepared``."""
    key = (decision.name, x_q.shape[1:])
    if key not in prepared:
        prepared[key] = _weight_side(decision, node, weights, x_q.shape)
    geometry, cols_f, cols8, cols7, scales8, scales7, per_bias = prepared[key]
    if geometry is not None:
        rows_q = conv_rows(x_q, geometry, p8.zero_point)
        rows_f = conv_rows(x_float.astype(np.float32), geometry, 0.0)
    else:
        k = x_q.shape[-1]
        rows_q = x_q.reshape(1, -1, k)
        rows_f = x_float.reshape(1, -1, k).astype(np.float32)
    groups = rows_q.shape[0]
    for g in range(groups):
        a_raw = rows_q[g].astype(np.int64)
        centred = (a_raw - p8.zero_point).astype(np.float64)
        reference = rows_f[g].astype(np.float64) @ cols_f[g].astype(np.float64)
        error, peak = saturation_error(a_raw.astype(np.uint8), cols8[g])
        found.peak = max(found.peak, peak)
        found.outputs += error.size
        found.saturated += int(np.count_nonzero(error))
        found.signal += float(((reference + per_bias[g]) ** 2).sum())
        found.saturation_noise += float(((error * (p8.scale * scales8[g])) ** 2).sum())
        if not candidates:
            continue
        y8 = (centred @ cols8[g].astype(np.float64)) * (p8.scale * scales8[g])
        y7 = (centred @ cols7[g].astype(np.float64)) * (p8.scale * scales7[g])
        a7 = uint8_codes(rows_f[g], p7)
        ya7 = ((a7 - p7.zero_point) @ cols8[g].astype(np.float64)) * (p7.scale * scales8[g])
        # In range a 7-bit input cannot overflow (2·127·127 < 32 767); only values beyond the
        # calibrated range can, and those are what this counts.
        error7, _ = saturation_error(a7.astype(np.uint8), cols8[g])
        found.a7_saturated += int(np.count_nonzero(error7))
        for candidate, y in (("w8", y8), ("w7", y7), ("a7", ya7)):
            found.noise[candidate] = found.noise.get(candidate, 0.0) + float(
                ((y - reference) ** 2).sum()
            )


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return math.inf
    return 10 * math.log10(max(signal, 1e-30) / noise)


def _finite(value: float) -> float | None:
    return None if math.isinf(value) else round(value, 2)
