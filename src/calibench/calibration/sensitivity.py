"""Per-layer sensitivity: how much each INT8 layer costs, measured by reverting it alone.

``revert_each`` is the one measurement both users share: the AccuracyAware ranking (scored by the
output divergence on the samples INT8 gets most wrong) and ``calibench sensitivity`` (scored by
accuracy on annotated data, or by output SQNR against FP32 without annotations). Each layer is
sent back to FP32 on its own (with the layers that must follow it, as ``revert_layers`` says),
the model rebuilt and scored; the runs go in parallel threads (ORT releases the GIL).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import onnx

import calibench.ops as ops
from calibench.calibration.bias_correction import output_sqnr
from calibench.calibration.default import reference_outputs, run_default
from calibench.config import CalibrationConfig
from calibench.data.annotations import AnnotatedDataset
from calibench.data.dataset import Dataset, select_subset
from calibench.metrics.base import Metric
from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import QuantPlan, revert_layers
from calibench.progress import ProgressCallback
from calibench.runtime.batch_axis import BatchAxes, find_batch_axes
from calibench.runtime.inputs import BatchReader, input_specs
from calibench.runtime.profiling import profile_layers
from calibench.runtime.session import make_session

SAMPLES = 64
"""Validation samples scored by default."""
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
"""A candidate's key: a layer's name, or the layers reverted together."""


def revertible(plan: QuantPlan, exclude: Sequence[str] = ()) -> list[str]:
    """The INT8 layers that can be reverted on their own (not the data-movement ops)."""
    return [
        d.name
        for d in plan.int8_layers()
        if d.op_type not in ops.PASS_THROUGH and d.name not in exclude
    ]


def revert_each(
    candidates: Sequence[K],
    run: Callable[[K], T],
    score: Callable[[T], float],
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> dict[K, float]:
    """``score(run(name))`` for every candidate: ``run`` (build the model with that layer
    reverted, run it) in parallel threads, ``score`` one result at a time in this thread, so a
    stateful metric is never shared between threads. Name → score."""
    results: dict[K, float] = {}
    count = workers or max(1, min(os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(max_workers=count) as pool:
        for done, (name, value) in enumerate(pool.map(lambda n: (n, run(n)), candidates), start=1):
            results[name] = score(value)
            if progress:
                progress(done, len(candidates))
    return results


def score_metric(
    metric: Metric,
    data: AnnotatedDataset,
    names: Sequence[str],
    batches: Sequence[tuple[list[int], Any]],
    outputs: Sequence[Sequence[np.ndarray]],
    axes: BatchAxes,
) -> float:
    """The metric over the samples of ``batches``, from the model outputs computed for them
    (each output split along its own batch axis)."""
    metric.reset()
    for (indices, _), batch in zip(batches, outputs, strict=True):
        for index, one in zip(indices, axes.split(names, batch, len(indices)), strict=True):
            metric.update(one, data.annotation(index), data.info(index))
    return float(metric.result()[metric.name])


@dataclass
class LayerSensitivity:
    name: str
    op_type: str
    reverted_score: float
    gain: float
    """Score with this layer in FP32 minus the Default model's score."""
    fp32_ms: float | None
    int8_ms: float | None
    saturation_sqnr_db: float | None = None
    """On a saturating ISA: the error ORT's u8×s8 kernel would add to this layer (before the
    overflow-safe scheme replaced it)."""
    scheme: str | None = None
    """The scheme the layer got on that ISA."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "op_type": self.op_type,
            "score_reverted": _finite(self.reverted_score),
            "gain": _finite(self.gain),
            "fp32_ms": None if self.fp32_ms is None else round(self.fp32_ms, 4),
            "int8_ms": None if self.int8_ms is None else round(self.int8_ms, 4),
            "saturation_sqnr_db": self.saturation_sqnr_db,
            "scheme": self.scheme,
        }


@dataclass
class SensitivityReport:
    model: str
    measure: str
    """``top1`` (or another metric) on annotated data, else ``output SQNR (dB)``."""
    fp32_score: float | None
    int8_score: float
    samples: int
    isa: str
    layers: list[LayerSensitivity] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measure": self.measure,
            "fp32": self.fp32_score,
            "int8": round(self.int8_score, 4),
            "samples": self.samples,
            "isa": self.isa,
            "seconds": round(self.seconds, 2),
            "layers": [layer.to_dict() for layer in self.layers],
        }


def run_sensitivity(
    model: onnx.ModelProto,
    name: str,
    calibration: Dataset,
    validation: Dataset,
    metric: Metric | None,
    config: CalibrationConfig,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
) -> SensitivityReport:
    """Rank the Default model's INT8 layers by what reverting each alone gives back."""
    start = time.perf_counter()
    default = run_default(model, calibration, config, progress=progress, threads=threads)
    fp32 = default.fp32
    indices = (
        select_subset(len(validation), config.validation_subset)
        if config.validation_subset
        else list(range(min(len(validation), SAMPLES)))
    )
    reader = BatchReader(validation, input_specs(fp32), config.batch_size)
    batches, reference = reference_outputs(fp32, reader, indices, threads, default.memory_limit)
    names = [o.name for o in fp32.graph.output]
    axes = find_batch_axes(fp32, batches[0][1], reference[0], threads) if batches else None

    def outputs(candidate: onnx.ModelProto, workers: int | None = None) -> list[list[np.ndarray]]:
        session = make_session(candidate, threads=workers or threads, lean=True)
        return [session.run(None, feeds) for _, feeds in batches]

    def score_outputs(outs: list[list[np.ndarray]]) -> float:
        if metric is None:
            return output_sqnr(reference, outs)
        assert isinstance(validation, AnnotatedDataset) and axes is not None
        return score_metric(metric, validation, names, batches, outs, axes)

    def build(reverted: str) -> onnx.ModelProto:
        plan = revert_layers(default.plan, {reverted: "sensitivity: reverted alone"})
        return insert_qdq(fp32, plan, default.params, bias_shifts=default.shifts)

    fp32_score = score_outputs(reference) if metric is not None else None
    base = score_outputs(outputs(default.int8))
    candidates = revertible(default.plan)
    report_progress = (lambda d, t: progress("sensitivity", d, t)) if progress else None
    scores = revert_each(
        candidates, lambda n: outputs(build(n), workers=1), score_outputs, report_progress
    )
    fp32_ms, int8_ms = _layer_times(fp32), _layer_times(default.int8)
    layers = []
    for layer in candidates:
        found = default.overflow.get(layer)
        saturation = None
        if found is not None and found.saturated:
            saturation = round(found.saturation_sqnr, 2)
        layers.append(
            LayerSensitivity(
                layer,
                default.plan.layers[layer].op_type,
                scores[layer],
                scores[layer] - base,
                fp32_ms.get(layer),
                int8_ms.get(layer),
                saturation,
                found.scheme if found is not None else None,
            )
        )
    layers.sort(key=lambda s: -s.gain if math.isfinite(s.gain) else -math.inf)
    return SensitivityReport(
        model=name,
        measure=metric.name if metric is not None else "output SQNR (dB)",
        fp32_score=fp32_score,
        int8_score=base,
        samples=sum(len(i) for i, _ in batches),
        isa=default.isa.value,
        layers=layers,
        seconds=time.perf_counter() - start,
    )


def _finite(value: float) -> float | None:
    """JSON has no infinity: identical outputs (SQNR ∞) are written as null."""
    return round(value, 4) if math.isfinite(value) else None


def _layer_times(model: onnx.ModelProto) -> dict[str, float]:
    try:
        return profile_layers(model, runs=5, warmup=2).layers_ms
    except Exception:  # times are shown beside the ranking; never fail it over them
        return {}
