"""One streaming pass that gathers the statistics every activation quantizer needs.

The model is extended with ReduceMin/ReduceMax nodes (``passes.add_reduction_outputs``) so that
ONNX Runtime hands back two numbers per sample and tensor, never the tensors themselves; memory
therefore stays flat however many samples are read. The outlier-robust estimators need value
histograms: only then are the tensors fetched, one batch at a time, and folded into fixed-size
histograms at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes.add_reduction_outputs import AddReductionOutputsPass
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.session import make_session

HISTOGRAM_BINS = 2048

Progress = Callable[[int, int], None]


@dataclass
class TensorStats:
    """Running per-sample statistics of one tensor."""

    count: int = 0
    min_of_min: float = np.inf
    max_of_max: float = -np.inf
    sum_min: float = 0.0
    sum_max: float = 0.0
    sum_absmax: float = 0.0
    histogram: np.ndarray | None = None
    """Counts over ``HISTOGRAM_BINS`` equal bins spanning [−half_width, half_width]."""
    half_width: float = 0.0
    _spare: list[np.ndarray] = field(default_factory=list, repr=False)

    def add(self, minima: np.ndarray, maxima: np.ndarray) -> None:
        minima = minima.astype(np.float64).reshape(-1)
        maxima = maxima.astype(np.float64).reshape(-1)
        self.count += minima.size
        self.min_of_min = min(self.min_of_min, float(minima.min()))
        self.max_of_max = max(self.max_of_max, float(maxima.max()))
        self.sum_min += float(minima.sum())
        self.sum_max += float(maxima.sum())
        self.sum_absmax += float(np.maximum(np.abs(minima), np.abs(maxima)).sum())

    def add_values(self, values: np.ndarray) -> None:
        """Fold raw values into the histogram, doubling its span when they overflow it."""
        values = values.reshape(-1)
        top = float(np.abs(values).max()) if values.size else 0.0
        if self.histogram is None:
            self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
            self.half_width = max(top, 1e-6)
        while top > self.half_width:
            # Merge pairs of bins into the middle half: the span doubles, the bin count stays.
            merged = self.histogram.reshape(-1, 2).sum(axis=1)
            self.histogram = np.zeros_like(self.histogram)
            quarter = HISTOGRAM_BINS // 4
            self.histogram[quarter : quarter + merged.size] = merged
            self.half_width *= 2
        counts, _ = np.histogram(
            values, bins=HISTOGRAM_BINS, range=(-self.half_width, self.half_width)
        )
        self.histogram += counts

    def histogram_centers(self) -> np.ndarray:
        edges = np.linspace(-self.half_width, self.half_width, HISTOGRAM_BINS + 1)
        return (edges[:-1] + edges[1:]) / 2

    @property
    def mean_min(self) -> float:
        return self.sum_min / max(self.count, 1)

    @property
    def mean_max(self) -> float:
        return self.sum_max / max(self.count, 1)

    @property
    def mean_absmax(self) -> float:
        return self.sum_absmax / max(self.count, 1)


def collect_statistics(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    reader: BatchReader,
    indices: Sequence[int],
    histograms: bool = False,
    progress: Progress | None = None,
    threads: int | None = None,
    memory_limit: int | None = None,
) -> dict[str, TensorStats]:
    """Per-sample min/max (and optionally histograms) of ``tensors`` over ``indices``, in
    batches that fit ``memory_limit``."""
    augmented = ir.from_proto(model)
    adding = AddReductionOutputsPass(tensors, raw=histograms, per_sample=reader.batch_size > 1)
    adding(augmented)
    outputs = adding.outputs
    session = make_session(ir.to_proto(augmented), threads=threads, lean=True)
    reader = fit_reader(reader, indices, lambda feeds: session.run(outputs, feeds), memory_limit)
    stats = {t: TensorStats() for t in tensors}
    done = 0
    for batch_indices, feeds in reader.batches(indices):
        results = dict(zip(outputs, session.run(outputs, feeds), strict=True))
        for tensor in tensors:
            if histograms:
                values = results[tensor]
                flat = (
                    values.reshape(values.shape[0], -1)
                    if values.ndim > 1
                    else values.reshape(1, -1)
                )
                stats[tensor].add(flat.min(axis=1), flat.max(axis=1))
                stats[tensor].add_values(values)
            else:
                stats[tensor].add(results[f"{tensor}::min"], results[f"{tensor}::max"])
        done += len(batch_indices)
        if progress:
            progress(done, len(indices))
    return stats
