"""What OpenVINO really runs, per layer of the ONNX file: read from its runtime graph.

DL Workbench showed, for each layer, the precision OpenVINO's CPU plugin executes it in; that is
the figure that says whether INT8 happened. After ``compile_model`` the plugin's runtime graph
(``compiled.get_runtime_model()``) holds one node per kernel it runs, with ``layerType``,
``runtimePrecision`` (``u8``/``i8`` for INT8 kernels), ``primitiveType`` (the oneDNN kernel,
e.g. ``brgconv_avx512_1x1_I8``) and ``originalLayersNames``: the nodes of the model it was
made from, fused ones included. With ``PERF_COUNT`` on, each infer request's profiling info
gives every kernel's time.

Those original names are ONNX node names, decorated by OpenVINO's ONNX frontend: a Conv
``/f/Conv`` becomes ``/f/Conv/WithoutBiases`` plus its bias ``Add`` named ``/f/Conv``; a node may
carry its output tensor's name (``logits``); quantizers are named ``<tensor>::QuantizeLinear``.
Each name is resolved to an ONNX node: exact name, else the producer of a tensor of that name,
else the longest node name it starts with (followed by ``/`` or ``:``). The first resolved
compute node of a kernel is the layer that owns it; the others are fused into it. Kernels that
own no layer go to the same buckets as ONNX Runtime's profile: ``(layout)`` for Reorders,
``(convert)`` for quantizers left standing (quantizing the model input), ``(other)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.runtime.kernels import CONVERSIONS
from calibench.runtime.profiling import CONVERT, LAYOUT, OTHER, LayerTimes

NOT_RUN = frozenset({"Const", "Input", "Output", "Parameter", "Result"})
"""Runtime-graph nodes that are no kernels."""
INT8_PRECISIONS = frozenset({"u8", "i8"})


@dataclass(frozen=True)
class OpenVinoLayer:
    """How OpenVINO runs one layer of the ONNX file."""

    name: str
    op_type: str
    precision: str
    """``INT8`` (u8/i8 kernel), ``FP32``, or OpenVINO's own name of another precision."""
    kernel: str
    """``Convolution brgconv_avx512_1x1_I8``, or ``(fused into <layer>)``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "precision": self.precision,
            "kernel": self.kernel,
        }


@dataclass(frozen=True)
class OpenVinoProfile:
    """OpenVINO's runtime graph read back onto the ONNX layers, and each layer's time."""

    layers: dict[str, OpenVinoLayer]
    """ONNX node name → how OpenVINO runs it (Q/DQ nodes and constants left out)."""
    times: LayerTimes
    """Kernel time per layer (and per bucket), as ONNX Runtime's profile gives it."""

    def counts(self) -> dict[str, int]:
        """Kernels by precision: ``{"INT8": n, "FP32": m}`` (layers that own a kernel)."""
        found: dict[str, int] = {}
        for layer in self.layers.values():
            if not layer.kernel.startswith("(fused"):
                found[layer.precision] = found.get(layer.precision, 0) + 1
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": "openvino",
            "kernels": self.counts(),
            "layers": [layer.to_dict() for layer in self.layers.values()],
            "profile": self.times.to_dict(),
        }


def precision_of(runtime_precision: str) -> str:
    if runtime_precision in INT8_PRECISIONS:
        return "INT8"
    return "FP32" if runtime_precision == "f32" else runtime_precision


class OriginalNames:
    """Resolves the names in ``originalLayersNames`` to nodes of the ONNX model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        nodes = [n for n in model.graph.node if n.name]
        self.nodes = {n.name: n for n in nodes}
        self.producers = {o: n for n in model.graph.node for o in n.output if o}
        self._by_length = sorted(self.nodes, key=len, reverse=True)

    def resolve(self, name: str) -> onnx.NodeProto | None:
        if name in self.nodes:
            return self.nodes[name]
        if name in self.producers:
            return self.producers[name]
        if "::" in name:
            return None  # a quantizer OpenVINO named after its tensor, not a node of the file
        for candidate in self._by_length:
            if name.startswith(candidate) and name[len(candidate)] in "/:":
                return self.nodes[candidate]
        return None

    def is_conversion(self, name: str) -> bool:
        node = self.resolve(name)
        if node is not None:
            return node.op_type in CONVERSIONS
        return name.endswith(("::QuantizeLinear", "::DequantizeLinear"))


def read_runtime_graph(
    compiled: Any, model: onnx.ModelProto, convert_prefix: str | None = None
) -> tuple[dict[str, OpenVinoLayer], dict[str, str]]:
    """Each ONNX layer's runtime precision and kernel, and each kernel (runtime node name) →
    the layer or bucket its time belongs to. With ``convert_prefix``, a quantizer left
    standing is owned by ``<convert_prefix><its Q/DQ node name>`` instead of the ``(convert)``
    bucket: speed-aware placement needs to know which tensor each conversion converts."""
    names = OriginalNames(model)
    layers: dict[str, OpenVinoLayer] = {}
    owner: dict[str, str] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if kind in NOT_RUN:
            continue
        precision = precision_of(info["runtimePrecision"].astype(str))
        primitive = info["primitiveType"].astype(str)
        original = [n for n in info["originalLayersNames"].astype(str).split(",") if n]
        resolved = [names.resolve(n) for n in original]
        compute = [
            node
            for node in resolved
            if node is not None and node.op_type not in CONVERSIONS | {"Constant"}
        ]
        runtime_name = op.get_friendly_name()
        if not compute:
            if original and all(names.is_conversion(n) for n in original):
                node = names.resolve(original[0])
                quantizer = node.name if node is not None else original[0]
                owner[runtime_name] = (
                    CONVERT if convert_prefix is None else convert_prefix + quantizer
                )
            elif kind in ("Reorder", "Transpose"):
                owner[runtime_name] = LAYOUT
            else:
                owner[runtime_name] = OTHER
            continue
        head = compute[0]
        owner[runtime_name] = head.name
        if head.name not in layers or layers[head.name].kernel.startswith("(fused"):
            layers[head.name] = OpenVinoLayer(
                head.name, head.op_type, precision, f"{kind} {primitive}".strip()
            )
        for node in compute[1:]:
            if node.name not in layers:
                layers[node.name] = OpenVinoLayer(
                    node.name, node.op_type, precision, f"(fused into {head.name})"
                )
    return layers, owner


def profile_openvino(
    model: onnx.ModelProto | str | os.PathLike[str],
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    threads: int = 1,
    runs: int = 20,
    warmup: int = 5,
    trim: float = 0.1,
) -> OpenVinoProfile:
    """Compile ``model`` for OpenVINO's CPU plugin at the shapes of ``inputs`` (one batch per
    input) with per-kernel counters on; run it ``warmup + runs`` times and give each ONNX
    layer its runtime precision and its time per run (the mean less the slowest ``trim``
    fraction of the runs, as :func:`~calibench.runtime.profiling.profile_layers`). Without
    ``inputs``: random normal data of the model's input shapes, batch 1."""
    from calibench.runtime.openvino import OpenVinoModel

    if runs < 1 or warmup < 0 or threads < 1 or not 0 <= trim < 1:
        raise ValueError("runs and threads must be at least 1, warmup at least 0, trim in [0, 1)")
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    if inputs is None:
        inputs = random_inputs(proto)
    shapes = {k: v.shape for k, v in inputs.items()}
    compiled = OpenVinoModel(
        proto if isinstance(model, onnx.ModelProto) else Path(model),
        threads=threads,
        shapes=shapes,
        perf_count=True,
    )
    layers, owner = read_runtime_graph(compiled.compiled, proto)
    request = compiled.compiled.create_infer_request()
    feeds = dict(inputs)
    per_run: dict[str, np.ndarray] = {}
    walls = []
    for index in range(warmup + runs):
        request.infer(feeds)
        if index < warmup:
            continue
        walls.append(request.latency)
        for info in request.get_profiling_info():
            if info.status.name != "EXECUTED":
                continue
            layer = owner.get(info.node_name, OTHER)
            per_run.setdefault(layer, np.zeros(runs))[index - warmup] += (
                info.real_time.total_seconds() * 1000
            )
    keep = runs - int(trim * runs)
    layers_ms = {k: float(np.sort(v)[:keep].mean()) for k, v in per_run.items()}
    batch = max((a.shape[0] for a in inputs.values() if a.ndim), default=1)
    times = LayerTimes(
        layers_ms=layers_ms,
        total_ms=sum(layers_ms.values()),
        run_ms=float(np.mean(walls)),
        runs=runs,
        batch=batch,
        threads=threads,
    )
    return OpenVinoProfile(layers, times)


def random_inputs(model: onnx.ModelProto, batch: int = 1) -> dict[str, np.ndarray]:
    """Random normal data of the model's input shapes (timing rarely depends on values), the
    batch set to ``batch`` where it is free; refused for other free dimensions."""
    from calibench.runtime.inputs import input_specs

    rng = np.random.default_rng(0)
    feeds = {}
    for spec in input_specs(model):
        dims = list(spec.shape)
        if dims and not (isinstance(dims[0], int) and dims[0] > 0):
            dims[0] = batch
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ValueError(f"input {spec.name!r} has free dimensions {dims}; pass inputs")
        shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
    return feeds


def openvino_rows(model: onnx.ModelProto, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The layer table's ``rows`` (``report.layers.LayerRow``) with OpenVINO's runtime precision
    and kernel per layer, and its kernels counted by precision (``{"INT8": {"Convolution": 8},
    "FP32": {...}, "CONVERT": {...}}``, as ``runtime.kernels.kernel_counts`` counts ORT's).
    The model is compiled with a batch of 1 where the batch is free (other free dimensions
    stay free)."""
    from calibench.runtime.inputs import input_specs
    from calibench.runtime.openvino import compile_openvino

    shapes: dict[str, list[int]] | None = {}
    for spec in input_specs(model):
        dims = [d if isinstance(d, int) and d > 0 else -1 for d in spec.shape]
        if dims and dims[0] == -1:
            dims[0] = 1
        if shapes is not None and -1 not in dims:
            shapes[spec.name] = dims
        else:
            shapes = None  # a free dimension other than the batch: keep the model's shapes
    compiled = compile_openvino(model, threads=1, shapes=shapes or None)
    layers, owner = read_runtime_graph(compiled, model)
    counts: dict[str, dict[str, int]] = {}
    for layer in layers.values():
        if not layer.kernel.startswith("(fused"):
            kind = layer.kernel.split(" ")[0]
            bucket = counts.setdefault(layer.precision, {})
            bucket[kind] = bucket.get(kind, 0) + 1
    converts = sum(1 for name in owner.values() if name == CONVERT)
    if converts:
        counts["CONVERT"] = {"FakeQuantize": converts}
    sorted_counts = {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}
    return with_openvino_precisions(rows, layers), sorted_counts


def with_openvino_precisions(rows: list[Any], layers: Mapping[str, OpenVinoLayer]) -> list[Any]:
    """``rows`` (dataclasses with ``name``, ``precision``, ``kernel``) as OpenVINO runs them; a
    layer missing from its runtime graph was folded away (a constant, a Reshape)."""
    from dataclasses import replace

    shown = []
    for row in rows:
        layer = layers.get(row.name)
        if layer is None:
            shown.append(replace(row, kernel="(folded by OpenVINO)"))
        else:
            shown.append(replace(row, precision=layer.precision, kernel=layer.kernel))
    return shown
