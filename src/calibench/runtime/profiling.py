"""Time per layer from ONNX Runtime's own profiler, named after the layers of the model file.

Why the profiler: wall-clock timing of a whole run says *whether* INT8 is faster, not *where*.
ORT's profiler records how long each kernel of its optimised graph ran (``*_kernel_time`` events
of category ``Node``). Those kernels are not the nodes of the model file, so each one is mapped
back to the layer it came from:

1. ``_token_N`` suffixes that ORT appends when it rewrites a node are removed.
2. A name that is a node of the model is that layer. (QDQ fusion keeps the layer's name:
   ``DQ → Conv → Q`` becomes a ``QLinearConv`` called like the Conv.)
3. Otherwise the name, less a layout suffix (``_nchwc``, ``_nhwc``), is looked up as a *tensor*:
   ORT names the kernels it builds for the NCHWc layout after the tensor they write, and a fused
   kernel writes the output of the last node it absorbed (``Conv → BatchNormalization → Clip``
   becomes one Conv called ``<Clip output>_nchwc``). The time goes to the head of the fused chain:
   from the tensor's producer we walk back through activations and BatchNormalization (and an
   Add folded in as a residual sum) to the Conv, Gemm or MatMul that starts it. A node with
   no such head keeps the time itself.
4. A name that starts with a layer's name (``<layer>/...``, ``<layer>_...``) or reads
   ``fused <layer>`` goes to that layer.
5. What is still unknown goes to a bucket: ``(layout)`` for the Transpose and Reorder kernels ORT
   inserts to change layout, ``(convert)`` for QuantizeLinear/DequantizeLinear left standing
   (quantizing the model input, say), ``(other)`` for anything else.

A layer that ORT fused into a neighbour (a Relu absorbed by a Conv, an Add summed into a Conv)
gets no entry: its time is inside the neighbour's.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.runtime.inputs import input_specs
from calibench.runtime.kernels import CONVERSIONS
from calibench.runtime.session import make_session

LAYOUT = "(layout)"
CONVERT = "(convert)"
OTHER = "(other)"
BUCKETS = (LAYOUT, CONVERT, OTHER)

LAYOUT_KERNELS = frozenset({"Transpose", "ReorderInput", "ReorderOutput", "NhwcTranspose"})
FUSION_HEADS = frozenset(
    {"Conv", "ConvTranspose", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul"}
)
"""Ops that ORT fuses the following nodes into."""
FUSED_FOLLOWERS = frozenset(
    {
        "BatchNormalization",
        "Relu",
        "Clip",
        "LeakyRelu",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Add",
        "Sum",
    }
)
"""Ops that ORT absorbs into the Conv/Gemm/MatMul before them."""
_TOKEN = re.compile(r"(_token_\d+)+$")
_LAYOUT_SUFFIXES = ("_nchwc", "_nhwc")


@dataclass(frozen=True)
class LayerTimes:
    """Mean time per run of each layer, in milliseconds, at one batch size and thread count."""

    layers_ms: dict[str, float]
    """Layer name (or a bucket: ``(layout)``, ``(convert)``, ``(other)``) → ms per run
    (trimmed mean, see :func:`profile_layers`)."""
    total_ms: float
    """The sum of ``layers_ms``: all kernel time of a run."""
    run_ms: float
    """Mean wall time of a run as ORT's profiler saw it (kernels plus executor overhead)."""
    runs: int
    batch: int
    threads: int
    kernels: dict[str, list[str]] = field(default_factory=dict)
    """Layer name → the names of ORT's kernels whose time it got (to check the mapping)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers_ms": {k: round(v, 6) for k, v in self.layers_ms.items()},
            "total_ms": round(self.total_ms, 6),
            "run_ms": round(self.run_ms, 6),
            "runs": self.runs,
            "batch": self.batch,
            "threads": self.threads,
            "kernels": self.kernels,
        }


def profile_layers(
    model: onnx.ModelProto | str | os.PathLike[str],
    inputs: Mapping[str, np.ndarray] | None = None,
    *,
    batch: int = 1,
    threads: int = 1,
    runs: int = 20,
    warmup: int = 5,
    trim: float = 0.1,
    seed: int = 0,
) -> LayerTimes:
    """Profile ``runs`` runs of ``model`` after ``warmup`` runs; time per layer, per run.

    Each layer's time is the mean over the runs less its slowest ``trim`` fraction (10 %: 2 of 20
    runs), so that one preemption by another process does not turn into a layer's speed-up.

    ``inputs`` holds one array per model input with a batch axis; its first ``batch`` rows are
    used (repeated when there are fewer). Without it, random normal data of the model's input
    shapes is used (timing rarely depends on values; pass real data where it does).
    """
    if batch < 1 or runs < 1 or warmup < 0 or threads < 1 or not 0 <= trim < 1:
        raise ValueError(
            "batch, runs and threads must be at least 1, warmup at least 0, trim in [0, 1)"
        )
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    feeds = _feeds(proto, inputs, batch, seed)
    resolver = LayerResolver(proto)
    with tempfile.TemporaryDirectory(prefix="calibench-profile-") as tmp:
        session = make_session(proto, threads=threads, profile_prefix=str(Path(tmp) / "profile"))
        try:
            for _ in range(warmup + runs):
                session.run(None, feeds)
        finally:
            profile = Path(session.end_profiling())
        events = json.loads(profile.read_text())
    rows = {a.shape[0] for a in feeds.values() if a.ndim}
    return _aggregate(events, resolver, warmup, runs, trim, max(rows, default=batch), threads)


def _aggregate(
    events: list[dict[str, Any]],
    resolver: LayerResolver,
    warmup: int,
    runs: int,
    trim: float,
    batch: int,
    threads: int,
) -> LayerTimes:
    """Sum the kernel events of each run after warm-up by layer; a trimmed mean over runs."""
    starts = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )
    if len(starts) < warmup + runs:
        raise RuntimeError(
            f"ONNX Runtime's profile holds {len(starts)} runs, expected {warmup + runs} "
            "(its event limit may have been reached; profile fewer runs)"
        )
    measured = starts[warmup:]
    bounds = [float(e["ts"]) for e in measured]
    per_run: dict[str, np.ndarray] = {}
    kernels: dict[str, list[str]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        index = bisect.bisect_right(bounds, float(event["ts"])) - 1
        if index < 0:
            continue  # a warm-up run
        kernel = name[: -len("_kernel_time")]
        op = str(event.get("args", {}).get("op_name", ""))
        layer = resolver.layer_of(kernel, op)
        per_run.setdefault(layer, np.zeros(len(measured)))[index] += float(event["dur"])
        seen = kernels.setdefault(layer, [])
        if kernel not in seen:
            seen.append(kernel)
    keep = len(measured) - int(trim * len(measured))
    layers_ms = {k: float(np.sort(v)[:keep].mean()) / 1000 for k, v in per_run.items()}
    run_ms = sum(float(e["dur"]) for e in measured) / 1000 / len(measured)
    return LayerTimes(
        layers_ms=layers_ms,
        total_ms=sum(layers_ms.values()),
        run_ms=run_ms,
        runs=len(measured),
        batch=batch,
        threads=threads,
        kernels=kernels,
    )


class LayerResolver:
    """Maps the name of one of ORT's kernels to the layer of ``model`` it executes (see above)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        nodes = list(model.graph.node)
        self._nodes = {n.name: n for n in nodes if n.name}
        self._order = {id(n): i for i, n in enumerate(nodes)}
        # A name-keyed map of protobuf nodes, not the passes' onnx_ir index: the resolver answers
        # by the names ORT's profile prints, many times per profile, on a model it never edits.
        self._producers = {o: n for n in nodes for o in n.output if o}
        # Longest first, so that "/a/Conv_1" wins over "/a/Conv" as a prefix.
        self._by_length = sorted(self._nodes, key=len, reverse=True)
        self._seen: dict[tuple[str, str], str] = {}

    def layer_of(self, kernel: str, op_type: str = "") -> str:
        key = (kernel, op_type)
        if key not in self._seen:  # every run repeats the same kernels
            self._seen[key] = self._resolve(kernel, op_type)
        return self._seen[key]

    def _resolve(self, kernel: str, op_type: str) -> str:
        name = _TOKEN.sub("", kernel)
        if op_type in CONVERSIONS:
            return CONVERT
        node = self._nodes.get(name)
        if node is not None:
            return CONVERT if node.op_type in CONVERSIONS else node.name
        for tensor in _tensor_candidates(name):
            producer = self._producers.get(tensor)
            if producer is not None:
                return self._head(producer).name or OTHER
        stripped = name[len("fused ") :] if name.startswith("fused ") else name
        for candidate in self._by_length:
            if stripped == candidate or (
                stripped.startswith(candidate) and stripped[len(candidate)] in "/_: "
            ):
                return candidate
        if op_type in LAYOUT_KERNELS or name.startswith(("Reorder", "Transpose")):
            return LAYOUT
        return OTHER

    def _head(self, node: onnx.NodeProto) -> onnx.NodeProto:
        """The Conv/Gemm/MatMul a fused chain ending at ``node`` starts with, else ``node``."""
        current: onnx.NodeProto | None = node
        for _ in range(6):  # fused chains are short: Conv, BN, Add, activation
            if current is None or current.op_type not in FUSED_FOLLOWERS | FUSION_HEADS:
                return node
            if current.op_type in FUSION_HEADS:
                return current
            if current.op_type in ("Add", "Sum"):
                # A residual Add is summed into the Conv that computes one of its inputs (the
                # later one when both do); follow that input.
                heads = [h for h in map(self._plain_head, current.input) if h is not None]
                return max(heads, key=lambda h: self._order[id(h)]) if heads else node
            current = self._producers.get(current.input[0]) if current.input else None
        return node

    def _plain_head(self, tensor: str) -> onnx.NodeProto | None:
        """The Conv-like node behind ``tensor`` through activations and BN only, if any."""
        current = self._producers.get(tensor)
        for _ in range(4):
            if current is None:
                return None
            if current.op_type in FUSION_HEADS:
                return current
            if current.op_type not in FUSED_FOLLOWERS or current.op_type in ("Add", "Sum"):
                return None
            current = self._producers.get(current.input[0]) if current.input else None
        return None


def _tensor_candidates(name: str) -> list[str]:
    found = [name]
    for suffix in _LAYOUT_SUFFIXES:
        if name.endswith(suffix):
            found.insert(0, name[: -len(suffix)])
    return found


def _feeds(
    model: onnx.ModelProto, inputs: Mapping[str, np.ndarray] | None, batch: int, seed: int
) -> dict[str, np.ndarray]:
    """One batch per model input; a batch axis fixed in the model wins over ``batch``."""
    feeds: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(seed)
    for spec in input_specs(model):
        dims = list(spec.shape)
        fixed = bool(dims) and isinstance(dims[0], int) and dims[0] > 0
        rows = int(dims[0]) if fixed else batch  # type: ignore[arg-type]
        if inputs is not None:
            if spec.name not in inputs:
                raise ValueError(f"no array for model input {spec.name!r}")
            array = np.asarray(inputs[spec.name])
            if array.ndim == len(dims) - 1:
                array = array[None]
            reps = -(-rows // array.shape[0])
            feeds[spec.name] = np.concatenate([array] * reps)[:rows].astype(spec.dtype)
            continue
        if dims:
            dims[0] = rows
        if any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ValueError(
                f"input {spec.name!r} has free dimensions {dims}; pass inputs to profile it"
            )
        shape = tuple(int(d) for d in dims)  # type: ignore[arg-type]
        if spec.dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feeds
