"""An INT8 model beside its FP32 parent: figures from both inferences, plus per-layer time and
error measured on a few samples of the same dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibench.data.open import open_for_model
from calibench.data.preprocess import Preprocess
from calibench.model.load import load_model
from calibench.report.compare import Comparison, compare_models
from calibench.runtime.inputs import BatchReader, input_specs
from calibench.workflow.infer import InferenceReport
from calibench.workflow.performance import PerfResult, PerfSettings, measure_interleaved


def run_compare(
    fp32_path: Path,
    int8_path: Path,
    fp32: InferenceReport,
    int8: InferenceReport,
    dataset: Any,
    preprocess: Preprocess | dict[str, Any] | None = None,
    samples: int = 8,
) -> Comparison:
    proto = load_model(fp32_path)
    specs = input_specs(proto)
    data, _ = open_for_model(dataset, specs, preprocess, fp32_path.name)
    reader = BatchReader(data, specs, batch_size=1)
    chosen: list[dict[str, np.ndarray]] = []
    for _, feeds in reader.batches(list(range(min(len(data), samples * 4)))):
        chosen.append({k: v[0] for k, v in feeds.items()})
        if len(chosen) == samples:
            break
    accuracy = None
    if fp32.accuracy and int8.accuracy:
        accuracy = {
            "fp32": fp32.accuracy["figures"],
            "int8": int8.accuracy["figures"],
            "metric": fp32.accuracy["metric"],
        }
    # Cached inferences keep their accuracy; both models are timed again here, in alternating
    # windows, so the two timings come from the same machine state, at the INT8 model's settings.
    settings = int8.performance["settings"]
    timed = measure_interleaved(
        {"fp32": fp32_path, "int8": int8_path},
        {k: v[None] for k, v in chosen[0].items()},
        PerfSettings(
            batch=settings["batch"],
            streams=settings["streams"],
            threads=settings["threads"],
            seconds=2 * settings["seconds"],
        ),
    )
    perf = {name: _perf(result) for name, result in timed.items()}
    return compare_models(fp32_path, int8_path, chosen, accuracy=accuracy, perf=perf)


def _perf(result: PerfResult) -> dict[str, Any]:
    perf = result.to_dict()
    settings = perf.pop("settings")
    perf.update(batch=settings["batch"], streams=settings["streams"])
    return perf
