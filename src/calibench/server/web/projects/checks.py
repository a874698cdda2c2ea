"""What a project's settings must satisfy before any job runs, beyond what the calibration
settings check themselves: a built-in metric that fits the dataset, inference batch and streams
in range, finite preprocessing numbers, and annotations for AccuracyAware."""

from __future__ import annotations

import math
from typing import Any

from calibench.errors import CalibenchError, WorkbenchError
from calibench.metrics.registry import NAMES, WORDS, builtin_spec
from calibench.runtime.backend import Runtime
from calibench.runtime.openvino import import_openvino
from calibench.server.db import DatasetRow

METRICS = WORDS
"""What the workbench accepts as a metric, each in words: built-in ones only (a custom metric is
code, and the server never runs code a client names)."""


def check_metric(metric: str | None) -> str | None:
    if metric is None or not metric.strip():
        return None
    chosen = builtin_spec(metric)
    if chosen is None:
        raise WorkbenchError(
            f"unknown metric {metric[:60]!r}: choose {NAMES} (or none, for the "
            "dataset's default); custom metrics are for the command line and the Python API"
        )
    return chosen


def metric_fits(metric: str | None, dataset: DatasetRow) -> None:
    """Refuse, before any job runs, a metric the dataset cannot be scored with."""
    if dataset.task == "detection" and not (metric or "").startswith("map:"):
        raise WorkbenchError(
            f"{dataset.name!r} is a detection dataset: choose its metric, mAP with the model's "
            f"output decoder ({', '.join(m for m in METRICS if m.startswith('map:'))})"
        )
    if dataset.task != "detection" and (metric or "").startswith("map:"):
        raise WorkbenchError(f"mAP needs a detection dataset; {dataset.name!r} is {dataset.task}")


def inference_settings(
    batch: int, streams: int, runtime: str | None = None, local: bool = True
) -> dict[str, Any]:
    """Batch, streams and runtime, checked; an OpenVINO project on this machine is refused at
    once when OpenVINO is not installed here (a target's is checked where it runs)."""
    try:
        batch, streams = int(batch), int(streams)
    except (TypeError, ValueError) as error:
        raise WorkbenchError("batch size and streams must be whole numbers") from error
    if not 1 <= batch <= 1024:
        raise WorkbenchError("the batch size must be between 1 and 1024")
    if not 1 <= streams <= 64:
        raise WorkbenchError("the number of parallel streams must be between 1 and 64")
    try:
        chosen = Runtime.parse(runtime)
        if chosen is Runtime.OPENVINO and local:
            import_openvino()
    except CalibenchError as error:
        raise WorkbenchError(str(error)) from error
    return {"batch": batch, "streams": streams, "runtime": chosen.value}


def check_finite(value: Any, what: str) -> None:
    """Refuse NaN and infinities anywhere in a number, a list or a dict (JSON allows them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise WorkbenchError(f"{what} must be a finite number, not {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{what}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_finite(item, what)


def accuracy_aware_refusal(validation: DatasetRow) -> str | None:
    """Why AccuracyAware is not available on a project with this dataset (None: it is)."""
    if validation.annotated:
        return None
    labels = (validation.summary or {}).get("labels") or {}
    kinds = {"value": "a number", "text": "a text", "array": "an array", "ragged": "an array"}
    if labels.get("kind") in kinds:  # not class indices: only a custom metric scores them
        return (
            f"{validation.name!r} is labelled with {kinds[labels['kind']]} per sample, which "
            "only a custom metric scores, and the workbench runs built-in metrics only; run "
            "AccuracyAware from the command line: calibench calibrate --method accuracy-aware "
            "--metric package.module:function"
        )
    return (
        f"AccuracyAware measures accuracy on the project's dataset, {validation.name!r}, "
        "which has no annotations; use Default, or create the project on an annotated dataset"
    )
