"""The Python API: one call, one result holding the INT8 model and its report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from calibench.calibration.accuracy_aware import AccuracyAwareOutcome, run_accuracy_aware
from calibench.calibration.accuracy_aware.backend import LOCAL, Backend
from calibench.calibration.default import run_default
from calibench.calibration.distributed.options import RayShards, parse_executor
from calibench.calibration.kernel_check import check_kernels
from calibench.config import CalibrationConfig, Method, Placement, Preset, Subset
from calibench.data.annotations import AnnotatedDataset, is_annotated
from calibench.data.open import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.errors import ConfigError, KernelCheckError
from calibench.metrics.base import Metric
from calibench.metrics.custom import CallableMetric
from calibench.metrics.registry import metric_for
from calibench.model.eligibility import check_eligible
from calibench.model.load import DERIVED_KEY, load_model, save_model, with_min_opset
from calibench.progress import ProgressCallback
from calibench.report.calibration import CalibrationReport
from calibench.report.layers import ISA_KEY, REASONS_KEY, SCHEMES_KEY, layer_table
from calibench.runtime.backend import Runtime
from calibench.runtime.inputs import BatchReader, input_specs
from calibench.runtime.isa import host_cpu
from calibench.runtime.kernels import kernel_counts
from calibench.runtime.memory import parse_size


@dataclass
class CalibrationResult:
    model: onnx.ModelProto
    report: CalibrationReport

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_model(self.model, path)


def calibrate(
    model: str | os.PathLike[str] | onnx.ModelProto,
    dataset: Any,
    *,
    preset: str = Preset.PERFORMANCE.value,
    subset: str | float | int | Subset = "100%",
    method: str = Method.DEFAULT.value,
    max_drop: float | None = None,
    validation: Any = None,
    metric: str | Metric | Callable[..., float] | None = None,
    config: CalibrationConfig | None = None,
    preprocess: Preprocess | dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
    isa: str | None = None,
    keep_fp32: str | list[str] | tuple[str, ...] = (),
    strict: bool = False,
    memory_limit: int | str | None = None,
    executor: str | RayShards | None = None,
    placement: str = Placement.MEASURED.value,
    runtime: str | None = None,
    timing: AbstractContextManager[Any] | None = None,
) -> CalibrationResult:
    """Calibrate an FP32 ONNX model into an INT8 QDQ model.

    ``dataset`` is an imported dataset folder, a folder of images, an ``.npz`` file, a
    :class:`~calibench.data.Dataset`, or any iterable of input dicts or arrays. ``subset`` is a
    percentage (``"10%"``), a fraction (``0.1``) or a count (``300``).

    ``method="accuracy-aware"`` returns the fastest model found whose accuracy on ``validation``
    (default: ``dataset``; it must be annotated) is at most ``max_drop`` points below FP32's.
    ``metric`` is a spec (``"top1"``, ``"map:yolox"``, ``"module:function"``), a
    :class:`~calibench.metrics.base.Metric`, or any callable scoring one sample
    ``f(outputs, annotation) -> float``. ``config``, when given, overrides the other settings.

    ``isa`` is the ISA class the model will run on (default: this CPU's; ``"avx2"``,
    ``"vnni"``, …); ``keep_fp32`` names layers to keep in FP32 (names, op types or regexes).
    After calibration the integer kernels are checked against the exact INT8 arithmetic;
    ``strict=True`` raises :class:`~calibench.errors.KernelCheckError` when they differ.
    ``memory_limit`` (bytes, or ``"4G"``) bounds what the calibration passes hold (default: a
    quarter of the machine's memory). ``placement="measured"`` (default) times each INT8 layer
    against FP32 on this CPU (batch 1, ``threads``; see ``CalibrationConfig`` for the batch,
    threads and time budget) and keeps FP32 where INT8 is not faster; ``"rule"`` does not time.
    ``runtime="openvino"`` places the quantizers for
    OpenVINO (on the inputs of its INT8 layers), times the measured placement on OpenVINO and
    reads the layer table from OpenVINO's runtime graph. ``timing``, a context manager, is
    entered around the placement's timing alone (a lock, so that no other speed measurement
    on this machine runs meanwhile).

    ``executor`` is where the heavy passes run: ``"local"`` (default, this process), ``"ray"``
    (the Ray cluster at ``$RAY_ADDRESS`` or this machine's), or
    ``RayShards(address, workers=N)``. On Ray the statistics pass runs over shards of the
    calibration set and AccuracyAware's evaluations over shards of the validation set; the
    INT8 model is the same, byte for byte (with the same placement timings).
    """
    if config is None:
        chosen = subset if isinstance(subset, Subset) else Subset.parse(subset)
        config = CalibrationConfig(
            preset=Preset(preset) if preset in {p.value for p in Preset} else preset,  # type: ignore[arg-type]
            subset=chosen,
            method=Method(method) if method in {m.value for m in Method} else method,  # type: ignore[arg-type]
            max_drop=max_drop,
            metric=metric if isinstance(metric, str) else None,
            isa=isa or "auto",
            keep_fp32=(keep_fp32,) if isinstance(keep_fp32, str) else tuple(keep_fp32),
            memory_limit=parse_size(memory_limit) if memory_limit is not None else None,
            placement=placement,  # type: ignore[arg-type]
            runtime=Runtime.parse(runtime),
        )
    if isinstance(model, onnx.ModelProto):
        name = model.graph.name or "model"
        proto = with_min_opset(model, name)
    else:
        proto, name = load_model(model), Path(model).name
    check_eligible(proto, name)
    backend = _backend(executor)
    specs = input_specs(proto)
    data, bound = open_for_model(dataset, specs, preprocess, name)

    accuracy_aware: AccuracyAwareOutcome | None = None
    if config.method is Method.ACCURACY_AWARE:
        val_data, _ = (
            (data, bound)
            if validation is None
            else open_for_model(validation, specs, preprocess, name)
        )
        chosen_metric = _metric_for(val_data, metric if metric is not None else config.metric)
        assert isinstance(val_data, AnnotatedDataset)
        accuracy_aware = run_accuracy_aware(
            proto,
            data,
            val_data,
            chosen_metric,
            config,
            progress=progress,
            threads=threads,
            backend=backend,
            timing=timing,
        )
        outcome, int8, plan = accuracy_aware.default, accuracy_aware.int8, accuracy_aware.plan
    else:
        outcome = run_default(
            proto,
            data,
            config,
            progress=progress,
            threads=threads,
            statistics=backend.collect_statistics,
            timing=timing,
        )
        int8, plan = outcome.int8, outcome.plan
    check_reader = BatchReader(data, specs, config.batch_size)
    spread = outcome.subset_indices[len(outcome.subset_indices) // 2 :: 7]
    check = check_kernels(
        int8,
        outcome.fp32,
        plan,
        outcome.params,
        outcome.ranges,
        config.preset,
        check_reader,
        spread or outcome.subset_indices,
        outcome.isa,
        threads=threads,
        memory_limit=outcome.memory_limit,
    )
    if strict and not check.ok:
        raise KernelCheckError("--strict: " + "; ".join(check.warnings))
    int8.producer_name = "calibench"
    meta = {p.key: p.value for p in int8.metadata_props}
    meta[DERIVED_KEY] = name
    meta["calibench.config"] = json.dumps(config.to_dict())
    meta[REASONS_KEY] = json.dumps({d.name: d.reason for d in plan.layers.values()})
    meta[ISA_KEY] = outcome.isa.value
    meta[SCHEMES_KEY] = json.dumps(
        {
            d.name: [d.scheme.value, d.scheme_note]
            for d in plan.int8_layers()
            if d.scheme_note is not None
        }
    )
    onnx.helper.set_model_props(int8, meta)
    onnx.checker.check_model(int8)

    reasons = {d.name: d.reason for d in plan.layers.values()}
    rows, ort_graph = layer_table(int8, reasons)
    kernels = kernel_counts(ort_graph)
    if config.runtime is Runtime.OPENVINO:
        from calibench.runtime.openvino_layers import openvino_rows

        rows, kernels = openvino_rows(int8, rows)
    cpu = host_cpu()
    describe = getattr(data, "describe", None)
    report = CalibrationReport(
        model=name,
        config=config.to_dict(),
        dataset=describe() if describe else {"kind": type(data).__name__, "samples": len(data)},
        subset_size=len(outcome.subset_indices),
        dataset_size=len(data),
        skipped=outcome.skipped,
        stage_seconds=outcome.stage_seconds,
        layers=rows,
        kernels=kernels,
        notes=outcome.notes,
        preprocess=bound.to_dict() if bound else None,
        accuracy_aware=accuracy_aware.to_dict() if accuracy_aware else None,
        isa={
            "target": outcome.isa.value,
            "label": outcome.isa.label,
            "detected": outcome.isa_detected,
            "host": cpu.describe(),
            "host_cpu": cpu.to_dict(),
        },
        kernel_check=check.to_dict(),
        memory={
            "limit_mb": round((outcome.memory_limit or 0) / 2**20),
            "peak_mb": {k: round(v / 2**20) for k, v in outcome.stage_peaks.items()},
        },
        overflow=[f.to_dict() for f in outcome.overflow.values() if plan.layers[f.name].int8],
    )
    return CalibrationResult(int8, report)


def _backend(executor: str | RayShards | None) -> Backend:
    """This process, or a connection to the Ray cluster (Ray is imported only then)."""
    options = parse_executor(executor)
    if options is None:
        return LOCAL
    from calibench.calibration.distributed.backend import connect

    return connect(options)


def _metric_for(data: Any, metric: str | Metric | Callable[..., float] | None) -> Metric:
    """The metric AccuracyAware optimises; refuses data it cannot score."""
    if not is_annotated(data):
        raise ConfigError(
            "the AccuracyAware method needs an annotated dataset (images with labels or boxes, "
            "or an .npz with a 'labels' array); this one has no annotations"
        )
    assert isinstance(data, AnnotatedDataset)
    if isinstance(metric, Metric):
        return metric
    if callable(metric):
        return CallableMetric(metric, name=getattr(metric, "__name__", "custom"))
    return metric_for(data.task, data.classes, metric)
