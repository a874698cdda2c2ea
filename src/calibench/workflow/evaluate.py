"""Accuracy of a model over an annotated dataset, with a metric."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from calibench.data.annotations import AnnotatedDataset
from calibench.metrics.base import Metric
from calibench.runtime.backend import Runtime
from calibench.runtime.batch_axis import BatchAxes, find_batch_axes
from calibench.runtime.compile import compile_model
from calibench.runtime.inputs import BatchReader, input_specs


@dataclass
class AccuracyResult:
    metric: str
    figures: dict[str, float]
    samples: int
    skipped: list[int]
    per_sample: dict[int, float] = field(default_factory=dict)
    """Per-sample scores, for metrics that have them (the AccuracyAware method ranks on them)."""

    @property
    def value(self) -> float:
        return self.figures[self.metric]

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "figures": self.figures,
            "samples": self.samples,
            "skipped": len(self.skipped),
        }


def evaluate_accuracy(
    model: onnx.ModelProto | Path,
    dataset: AnnotatedDataset,
    metric: Metric,
    indices: list[int] | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    runtime: Runtime = Runtime.ONNXRUNTIME,
) -> AccuracyResult:
    """The metric of ``model`` run on ``runtime`` over ``indices`` of ``dataset``."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    compiled = compile_model(runtime, proto, threads=threads)
    names = compiled.output_names
    run = compiled.request()
    reader = BatchReader(dataset, input_specs(proto), batch_size)
    chosen = list(range(len(dataset))) if indices is None else indices
    metric.reset()
    per_sample: dict[int, float] = {}
    done = 0
    axes: BatchAxes | None = None
    for batch_indices, feeds in reader.batches(chosen):
        outputs = run(feeds)
        if axes is None:  # each output's batch axis, from the first batch the model ran
            axes = find_batch_axes(proto, feeds, outputs, threads=threads)
        samples = axes.split(names, outputs, len(batch_indices))
        for index, one in zip(batch_indices, samples, strict=True):
            score = metric.update(one, dataset.annotation(index), dataset.info(index))
            if score is not None:
                per_sample[index] = score
        done += len(batch_indices)
        if progress:
            progress(done + len(reader.skipped), len(chosen))
    return AccuracyResult(metric.name, metric.result(), done, list(reader.skipped), per_sample)
