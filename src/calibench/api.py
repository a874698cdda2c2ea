"""The Python API: one call, one result holding the INT8 model and its report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from calibench.calibration.default import ProgressCallback, run_default
from calibench.config import CalibrationConfig, Subset
from calibench.data.binding import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.model.eligibility import check_eligible
from calibench.model.load import DERIVED_KEY, load_model, save_model
from calibench.report.calibration import CalibrationReport
from calibench.report.layers import layer_table
from calibench.runtime.inputs import input_specs
from calibench.runtime.kernels import kernel_counts


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
    preset: str = "performance",
    subset: str | float | int | Subset = "100%",
    config: CalibrationConfig | None = None,
    preprocess: Preprocess | dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    threads: int | None = None,
) -> CalibrationResult:
    """Calibrate an FP32 ONNX model into an INT8 QDQ model with the Default method.

    ``dataset`` is a folder of images, an ``.npz`` file, a :class:`~calibench.data.Dataset`, or
    any iterable of input dicts or arrays. ``subset`` is a percentage (``"10%"``), a fraction
    (``0.1``) or a count (``300``). ``config``, when given, overrides ``preset`` and ``subset``.
    """
    if config is None:
        chosen = subset if isinstance(subset, Subset) else Subset.parse(subset)
        config = CalibrationConfig(preset=preset, subset=chosen)  # type: ignore[arg-type]
    if isinstance(model, onnx.ModelProto):
        proto, name = model, model.graph.name or "model"
    else:
        proto, name = load_model(model), Path(model).name
    check_eligible(proto, name)
    data, bound = open_for_model(dataset, input_specs(proto), preprocess, name)

    outcome = run_default(proto, data, config, progress=progress, threads=threads)
    int8 = outcome.int8
    int8.producer_name = "calibench"
    meta = {p.key: p.value for p in int8.metadata_props}
    meta[DERIVED_KEY] = name
    meta["calibench.config"] = str(config.to_dict())
    onnx.helper.set_model_props(int8, meta)
    onnx.checker.check_model(int8)

    reasons = {d.name: d.reason for d in outcome.plan.layers.values()}
    rows, runtime = layer_table(int8, reasons)
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
        kernels=kernel_counts(runtime),
        notes=outcome.notes,
        preprocess=bound.to_dict() if bound else None,
    )
    return CalibrationResult(int8, report)
