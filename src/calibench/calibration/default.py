"""The Default method: quantize every layer the runtime can execute in INT8.

statistics (one streaming pass) → ranges → quantizers → bias correction (one more pass over at
most ``BIAS_CORRECTION_SAMPLES`` of the subset).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from calibench.calibration.bias_correction import bias_shifts, depth_prefixes, output_sqnr
from calibench.calibration.measured_placement import (
    MeasuredPlacement,
    place_by_timing,
    timer_for,
)
from calibench.calibration.overflow import (
    SAMPLES as OVERFLOW_SAMPLES,
)
from calibench.calibration.overflow import (
    LayerOverflow,
    choose_schemes,
    measure_overflow,
)
from calibench.calibration.ranges import activation_range
from calibench.calibration.statistics import TensorStats, collect_statistics
from calibench.config import CalibrationConfig, Placement, Preset, RangeEstimator
from calibench.data.dataset import Dataset, select_subset
from calibench.errors import ConfigError
from calibench.passes.insert_qdq import insert_qdq
from calibench.passes.placement import QuantPlan, keep_fp32, refine_with_ranges
from calibench.passes.placement_openvino import place_for_openvino
from calibench.passes.prepare import prepare_fp32
from calibench.progress import ProgressCallback
from calibench.quant import QuantParams, params_for_range
from calibench.runtime.backend import Runtime
from calibench.runtime.inputs import BatchReader, fit_reader, input_specs
from calibench.runtime.isa import Isa, resolve_isa
from calibench.runtime.memory import RssWatch, default_limit, release_free_memory
from calibench.runtime.session import make_session
from calibench.words import plural

BIAS_CORRECTION_SAMPLES = 64
PLACEMENT_STAGE = "placement timing"


@dataclass
class DefaultOutcome:
    fp32: onnx.ModelProto
    """The FP32 model as quantized: BatchNorm folded, every node named."""
    int8: onnx.ModelProto
    plan: QuantPlan
    params: dict[str, QuantParams]
    ranges: dict[str, tuple[float, float]]
    stats: dict[str, TensorStats]
    shifts: dict[str, np.ndarray]
    subset_indices: list[int]
    skipped: list[int]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    isa: Isa = Isa.VNNI
    isa_detected: bool = True
    stage_peaks: dict[str, int] = field(default_factory=dict)
    """Peak resident memory of each stage, in bytes (Linux only)."""
    memory_limit: int | None = None
    overflow: dict[str, LayerOverflow] = field(default_factory=dict)
    """Per GEMM layer: the saturation measured and the scheme chosen (saturating ISAs only)."""
    placement: MeasuredPlacement | None = None
    """Speed-aware placement's timings (None with ``--placement rule``)."""


def run_default(
    model: onnx.ModelProto,
    dataset: Dataset,
    config: CalibrationConfig,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    statistics: Callable[..., dict[str, TensorStats]] = collect_statistics,
    timing: AbstractContextManager[Any] | None = None,
) -> DefaultOutcome:
    """``statistics`` runs the statistics pass (``collect_statistics``'s signature and
    result; ``calibration.distributed`` shards it over Ray workers). ``timing`` is entered
    around speed-aware placement's timing alone (the workbench's lock, so that a job measuring
    speed side by side does not skew it)."""
    seconds: dict[str, float] = {}
    peaks: dict[str, int] = {}
    limit = config.memory_limit or default_limit()
    with RssWatch() as watch:

        def finish(stage: str, started: float) -> None:
            seconds[stage] = time.perf_counter() - started
            peaks[stage] = watch.take()
            release_free_memory()  # the next stage's peak is its own, not what this one left

        return _run_default(
            model,
            dataset,
            config,
            progress,
            threads,
            limit,
            finish,
            seconds,
            peaks,
            statistics,
            timing or nullcontext(),
        )


def _run_default(
    model: onnx.ModelProto,
    dataset: Dataset,
    config: CalibrationConfig,
    progress: ProgressCallback | None,
    threads: int | None,
    limit: int,
    finish: Callable[[str, float], None],
    seconds: dict[str, float],
    peaks: dict[str, int],
    statistics: Callable[..., dict[str, TensorStats]],
    timing: AbstractContextManager[Any],
) -> DefaultOutcome:
    def report(stage: str) -> Callable[[int, int], None] | None:
        return (lambda done, total: progress(stage, done, total)) if progress else None

    start = time.perf_counter()
    isa, detected = resolve_isa(config.isa)
    fp32, plan = prepare_fp32(model)
    if config.runtime is Runtime.OPENVINO:
        plan = place_for_openvino(fp32, plan)
    plan = keep_fp32(plan, config.keep_fp32)
    reader = BatchReader(dataset, input_specs(fp32), config.batch_size)
    indices = select_subset(len(dataset), config.subset)
    roots = [t for t in plan.tensors if t not in plan.aliases]
    finish("preparation", start)

    start = time.perf_counter()
    stats = statistics(
        fp32,
        roots,
        reader,
        indices,
        histograms=config.range_estimator is not RangeEstimator.MINMAX,
        progress=report("statistics"),
        threads=threads,
        memory_limit=limit,
    )
    finish("statistics", start)

    start = time.perf_counter()
    if progress:
        progress("quantization", 0, 1)
    ranges = {t: activation_range(stats[t], config.preset, config.range_estimator) for t in roots}
    ranges.update({t: ranges[root] for t, root in plan.aliases.items()})
    refine_with_ranges(plan, ranges)
    params = {t: params_for_range(*ranges[t], config.preset) for t in plan.tensors}
    _check_finite(params, ranges)
    notes: list[str] = _preset_hints(config, stats)
    finish("quantization", start)

    overflow: dict[str, LayerOverflow] = {}
    if isa.saturates:
        start = time.perf_counter()
        step = max(1, len(indices) // OVERFLOW_SAMPLES)
        unreadable = set(reader.skipped)
        measured_on = [i for i in indices[::step] if i not in unreadable]
        overflow = measure_overflow(
            fp32,
            plan,
            params,
            ranges,
            config.preset,
            reader,
            measured_on[:OVERFLOW_SAMPLES],
            threads=threads,
            progress=report("quantization"),
            memory_limit=limit,
        )
        params = choose_schemes(fp32, plan, params, ranges, config.preset, overflow, isa)
        notes.append(_overflow_note(overflow, isa))
        finish("overflow check", start)
    int8 = insert_qdq(fp32, plan, params)
    if progress:
        progress("quantization", 1, 1)

    placement: MeasuredPlacement | None = None
    if config.placement is Placement.MEASURED:
        start = time.perf_counter()
        on_placement = report(PLACEMENT_STAGE)
        if on_placement:  # the stage shows while it waits for the timing lock
            on_placement(0, 1)
        with timing:
            placement, why_not = _place_by_timing(
                fp32, plan, params, reader, indices, config, isa, threads, on_placement
            )
        if placement is not None:
            plan, int8 = placement.plan, placement.model
            notes.extend(placement.notes)
        else:
            notes.append(why_not)
        finish(PLACEMENT_STAGE, start)

    shifts: dict[str, np.ndarray] = {}
    if config.bias_correction:
        start = time.perf_counter()
        step = max(1, len(indices) // BIAS_CORRECTION_SAMPLES)
        bc_indices = [i for i in indices[::step] if i not in set(reader.skipped)]
        bc_indices = bc_indices[:BIAS_CORRECTION_SAMPLES]
        measured = bias_shifts(
            fp32,
            plan,
            params,
            reader,
            bc_indices,
            progress=report("bias correction"),
            threads=threads,
            memory_limit=limit,
        )
        shifts, int8, bias_notes = _keep_helpful_shifts(
            fp32, plan, params, measured, reader, bc_indices, threads, limit
        )
        notes.extend(bias_notes)
        finish("bias correction", start)

    return DefaultOutcome(
        fp32=fp32,
        int8=int8,
        plan=plan,
        params=params,
        ranges=ranges,
        stats=stats,
        shifts=shifts,
        subset_indices=indices,
        skipped=sorted(set(reader.skipped)),
        stage_seconds=seconds,
        notes=notes,
        isa=isa,
        isa_detected=detected,
        stage_peaks=peaks,
        memory_limit=limit,
        overflow=overflow,
        placement=placement,
    )


def _place_by_timing(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    reader: BatchReader,
    indices: list[int],
    config: CalibrationConfig,
    isa: Isa,
    threads: int | None,
    progress: Callable[[int, int], None] | None,
) -> tuple[MeasuredPlacement | None, str]:
    """Speed-aware placement on this machine, or why the rule placement stays."""
    host = resolve_isa("auto")[0]
    if isa is not host:
        return None, (
            f"placement: by rule, untimed: the model is made for {isa.label} and this CPU is "
            f"{host.label}, where timings would not hold (drop --isa to time it here)"
        )
    first = next(iter(reader.batches(indices[: config.placement_batch])), None)
    if first is None:
        return None, "placement: by rule, untimed: no readable calibration sample to time with"
    timer = timer_for(config, first[1], threads)
    try:
        placed = place_by_timing(fp32, plan, params, timer, config.placement_budget_s, progress)
    except ConfigError as exc:  # OpenVINO missing, or it cannot compile the model
        return None, f"placement: by rule, untimed: {exc}"
    except Exception as exc:  # timing is an optimisation: the rule model is still right
        return None, f"placement: by rule, timing failed ({type(exc).__name__}: {exc})"
    finally:
        timer.release()  # models a timer compiled and kept would hold memory from now on
    return placed, ""


def _check_finite(params: dict[str, QuantParams], ranges: dict[str, tuple[float, float]]) -> None:
    """A scale that is not finite would write a model that outputs NaN: stop before writing.
    Data is checked for NaN/Inf where it enters, so this is a bug, reported as one."""
    for tensor, p in params.items():
        if not np.isfinite(p.scale) or p.scale <= 0:
            raise ArithmeticError(
                f"the quantization scale of {tensor!r} is {p.scale} (range {ranges.get(tensor)}); "
                "nothing was written"
            )


def _overflow_note(overflow: dict[str, LayerOverflow], isa: Isa) -> str:
    counts: dict[str, int] = {}
    for found in overflow.values():
        counts[found.scheme] = counts.get(found.scheme, 0) + 1
    words = {
        "u8s8": "fast u8×s8 (nothing overflowed)",
        "w7": "7-bit weights",
        "a7": "7-bit input",
        "u8u8": "uint8 weights (exact u8×u8 kernel)",
    }
    parts = ", ".join(f"{n} {words[s]}" for s, n in sorted(counts.items(), key=lambda x: -x[1]))
    return (
        f"{isa.label}: ONNX Runtime's u8×s8 kernel saturates on this ISA, so each of the "
        f"{len(overflow)} Conv/Gemm/MatMul layers got an overflow-safe scheme: {parts or 'none'}"
    )


def _preset_hints(config: CalibrationConfig, stats: dict[str, TensorStats]) -> list[str]:
    """Say so when the model's activations suit the other preset better."""
    if config.preset is not Preset.PERFORMANCE or not stats:
        return []
    lopsided = [
        s
        for s in stats.values()
        if s.min_of_min < 0 and s.mean_max > 0 and -s.mean_min < 0.25 * s.mean_max
    ]
    if len(lopsided) < 0.25 * len(stats):
        return []
    return [
        f"{len(lopsided)} of {len(stats)} quantized tensors are signed but lopsided (like "
        "SiLU/Swish outputs): the mixed preset (asymmetric activations) may lose less accuracy"
    ]


def reference_outputs(
    fp32: onnx.ModelProto,
    reader: BatchReader,
    indices: list[int],
    threads: int | None,
    memory_limit: int | None,
) -> tuple[list[tuple[list[int], dict[str, np.ndarray]]], list[list[np.ndarray]]]:
    """The batches (sized to the memory limit) and FP32's outputs for them. Sessions here and
    in the caller are lean and live one at a time: an arena keeps a session's peak."""
    reference = make_session(fp32, threads=threads, lean=True)
    reader = fit_reader(reader, indices, lambda feeds: reference.run(None, feeds), memory_limit)
    batches = list(reader.batches(indices))
    return batches, [reference.run(None, feeds) for _, feeds in batches]


def _keep_helpful_shifts(
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    measured: dict[str, np.ndarray],
    reader: BatchReader,
    indices: list[int],
    threads: int | None,
    memory_limit: int | None = None,
) -> tuple[dict[str, np.ndarray], onnx.ModelProto, list[str]]:
    """Apply the corrections as deep as they improve the outputs on the calibration data."""
    batches, expected = reference_outputs(fp32, reader, indices, threads, memory_limit)
    best: tuple[float, dict[str, np.ndarray], onnx.ModelProto] | None = None
    scores = []
    order = [node.name for node in fp32.graph.node]
    for candidate in depth_prefixes(measured, order):
        model = insert_qdq(fp32, plan, params, bias_shifts=candidate)
        session = make_session(model, threads=threads, lean=True)
        score = output_sqnr(expected, [session.run(None, feeds) for _, feeds in batches])
        del session
        scores.append((len(candidate), score))
        if best is None or score > best[0] + 1e-6:
            best = (score, candidate, model)
    assert best is not None
    kept = len(best[1])
    baseline = scores[0][1]
    # The words a person reads on the INT8 project's page: what bias correction is, what it
    # did, and what the decibels mean.
    note = (
        f"bias correction (removing the average shift INT8 rounding adds to a layer's "
        f"outputs): applied to the first {plural(kept, 'layer')} of {len(measured)}, which "
        f"brought the model's outputs closer to FP32's (SQNR {baseline:.1f} → {best[0]:.1f} dB "
        "on the calibration samples; higher is closer)"
        if kept
        else f"bias correction (removing the average shift INT8 rounding adds to a layer's "
        f"outputs): tried on {plural(len(measured), 'layer')} and left out, because it did not "
        f"bring the model's outputs closer to FP32's (SQNR {baseline:.1f} dB on the calibration "
        "samples; higher is closer). Nothing to do: the INT8 model is as close without it"
    )
    return best[1], best[2], [note]
