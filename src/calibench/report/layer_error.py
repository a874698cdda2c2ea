"""How far each INT8 layer's output is from the FP32 model's: SQNR per layer, on a few samples.

Why this way: a QDQ model run with ORT's graph optimisations *disabled* executes the fake-quantized
float graph exactly as written, so the float output of every quantized layer is there to read,
under the same tensor name as in the FP32 model. Both models are run with those tensors made
graph outputs, one sample at a time, and ``SQNR = 10·log10(Σ fp32² / Σ (fp32 − int8)²)`` is taken
over all samples together.

Name alignment: calibench builds its INT8 model from the FP32 model with BatchNormalization folded
into the Conv before it (``passes.prepare.prepare_fp32``). A folded Conv writes the tensor
the BatchNormalization wrote before, so the FP32 side runs the same preparation; its values are
the original model's up to float rounding. A layer whose output is a graph output is renamed
``<name>::fp32`` in the QDQ model (the graph output is then the dequantized copy); it is compared
with ``<name>`` of the FP32 model.

Each layer's SQNR is *cumulative*: it holds the error of every quantized layer before it. A
sharp fall from one layer to the next marks the layer that adds the error. A Conv's output is read
after a ReLU/Clip it absorbs, since the runtime computes the two as one kernel.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort

from calibench.model.load import load_model
from calibench.passes.prepare import prepare_fp32
from calibench.runtime.inputs import input_specs
from calibench.runtime.kernels import CONVERSIONS
from calibench.runtime.session import make_session

ABSORBED_ACTIVATIONS = frozenset({"Relu", "Clip"})
GRAPH_OUTPUT_SUFFIX = "::fp32"
DEFAULT_SAMPLES = 8


@dataclass(frozen=True)
class LayerError:
    name: str
    op_type: str
    tensor: str
    """The FP32 model's tensor compared (the layer's output, after an absorbed activation)."""
    sqnr_db: float
    """``inf`` when the outputs are identical."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "tensor": self.tensor,
            "sqnr_db": finite_or_none(self.sqnr_db),
        }


@dataclass(frozen=True)
class ErrorReport:
    layers: list[LayerError]
    """INT8 layers in graph order."""
    outputs: dict[str, float]
    """Model output name → SQNR in dB."""
    samples: int
    skipped: list[str] = field(default_factory=list)
    """Quantized layers with no FP32 tensor of the same name or shape to compare with."""

    def by_name(self) -> dict[str, LayerError]:
        return {row.name: row for row in self.layers}

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "layers": [row.to_dict() for row in self.layers],
            "outputs": {k: finite_or_none(v) for k, v in self.outputs.items()},
            "skipped": self.skipped,
        }


def layer_errors(
    fp32: onnx.ModelProto | str | os.PathLike[str],
    int8: onnx.ModelProto | str | os.PathLike[str],
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    max_samples: int = DEFAULT_SAMPLES,
    threads: int = 1,
) -> ErrorReport:
    """SQNR of each quantized layer of ``int8`` against ``fp32``, on the first ``max_samples``
    of ``samples`` (``{input_name: array}``, with or without a batch axis of 1)."""
    chosen = list(samples)[:max_samples]
    if not chosen:
        raise ValueError("layer errors need at least one sample")
    fp32_proto = prepare_fp32(fp32 if isinstance(fp32, onnx.ModelProto) else load_model(fp32))[0]
    int8_proto = int8 if isinstance(int8, onnx.ModelProto) else load_model(int8)

    fp32_tensors = {o for n in fp32_proto.graph.node for o in n.output}
    outputs = [o.name for o in int8_proto.graph.output]
    fp32_outputs = {o.name for o in fp32_proto.graph.output}
    outputs = [o for o in outputs if o in fp32_outputs]
    layers: list[tuple[ir.Node, str, str]] = []  # node, int8 tensor, fp32 tensor
    skipped: list[str] = []
    for node, tensor in quantized_layers(int8_proto):
        reference = tensor.removesuffix(GRAPH_OUTPUT_SUFFIX)
        if reference in fp32_tensors:
            layers.append((node, tensor, reference))
        else:
            skipped.append(node.name or "")

    fp32_names = list(dict.fromkeys([r for _, _, r in layers] + outputs))
    int8_names = list(dict.fromkeys([t for _, t, _ in layers] + outputs))
    fp32_session = make_session(_exposing(fp32_proto, fp32_names), threads=threads)
    int8_session = make_session(
        _exposing(int8_proto, int8_names),
        threads=threads,
        optimization=ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    )
    specs = input_specs(fp32_proto)
    signal = dict.fromkeys(int8_names, 0.0)
    noise = dict.fromkeys(int8_names, 0.0)
    mismatched: set[str] = set()
    for sample in chosen:
        feeds = {}
        for spec in specs:
            array = np.asarray(sample[spec.name])
            feeds[spec.name] = (array[None] if array.ndim == len(spec.shape) - 1 else array).astype(
                spec.dtype
            )
        expected = dict(zip(fp32_names, fp32_session.run(fp32_names, feeds), strict=True))
        got = dict(zip(int8_names, int8_session.run(int8_names, feeds), strict=True))
        pairs = [(t, r) for _, t, r in layers] + [(o, o) for o in outputs]
        for int8_name, fp32_name in pairs:
            a = np.asarray(expected[fp32_name], dtype=np.float64)
            b = np.asarray(got[int8_name], dtype=np.float64)
            if a.shape != b.shape:
                mismatched.add(int8_name)
                continue
            signal[int8_name] += float(np.square(a).sum())
            noise[int8_name] += float(np.square(a - b).sum())

    rows = [
        LayerError(node.name or "", node.op_type, ref, sqnr_db(signal[t], noise[t]))
        for node, t, ref in layers
        if t not in mismatched
    ]
    skipped += [node.name or "" for node, t, _ in layers if t in mismatched]
    return ErrorReport(
        layers=rows,
        outputs={o: sqnr_db(signal[o], noise[o]) for o in outputs if o not in mismatched},
        samples=len(chosen),
        skipped=skipped,
    )


def quantized_layers(model: onnx.ModelProto) -> list[tuple[ir.Node, str]]:
    """The layers of a QDQ model that read a dequantized activation, each with the float tensor
    that holds its result (past a single ReLU/Clip it feeds, which the runtime absorbs)."""
    found = []
    for node in ir.from_proto(model).graph:
        if node.op_type in CONVERSIONS or node.op_type in ("Constant", "Identity"):
            continue
        if not node.outputs or not any(_reads_quantized(v) for v in node.inputs):
            continue
        tensor = node.outputs[0]
        users = [use.node for use in tensor.uses()]
        if len(users) == 1 and users[0].op_type in ABSORBED_ACTIVATIONS:
            tensor = users[0].outputs[0]
        found.append((node, tensor.name or ""))
    return found


def sqnr_db(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity: identical outputs (``inf`` dB) are written as null."""
    return round(value, 4) if value is not None and math.isfinite(value) else None


def _reads_quantized(value: ir.Value | None) -> bool:
    """True for a DequantizeLinear output that carries an activation, not a weight or bias."""
    dq = value.producer() if value is not None else None
    if dq is None or dq.op_type != "DequantizeLinear":
        return False
    source = dq.inputs[0]
    return source is not None and source.producer() is not None


def _exposing(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of ``model`` with ``names`` among its graph outputs (layer outputs are float)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name in names:
        if name not in present:
            value = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            copy.graph.output.append(value)
    return copy
