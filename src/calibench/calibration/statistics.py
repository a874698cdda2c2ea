"""One streaming pass that gathers the statistics every activation quantizer needs.

The model is extended with ReduceMin/ReduceMax nodes (``passes.add_reduction_outputs``) so that
ONNX Runtime hands back two numbers per sample and tensor, never the tensors themselves; memory
therefore stays flat however many samples are read. The outlier-robust estimators need value
histograms: only then are the tensors fetched, one batch at a time, and folded into fixed-size
histograms at once.

Every statistic merges exactly, so the pass can run over shards of the calibration set (on Ray
workers, ``calibration.distributed``) and give the ranges of one pass, bit for bit: sums are
kept exact (Shewchuk's partials) and rounded once, so their order does not matter, and a
histogram's span is a power of two strictly above the largest value seen, so any two
histograms share their bin edges once the smaller one's span is doubled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes.add_reduction_outputs import AddReductionOutputsPass
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.session import make_session

HISTOGRAM_BINS = 2048

Progress = Callable[[int, int], None]


class ExactSum:
    """A sum of floats kept exact as non-overlapping partials (Shewchuk; Python's ``msum``
    recipe) and rounded once when read: the result does not depend on the order of the
    terms, so sums over shards merge into the very float one pass would give."""

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, values: Iterable[float]) -> None:
        partials = self.partials
        for x in values:
            i = 0
            for y in partials:
                if abs(x) < abs(y):
                    x, y = y, x
                high = x + y
                low = y - (high - x)
                if low:
                    partials[i] = low
                    i += 1
                x = high
            partials[i:] = [x]

    def merge(self, other: ExactSum) -> None:
        self.add(list(other.partials))

    @property
    def value(self) -> float:
        return math.fsum(self.partials)

    def __getstate__(self) -> list[float]:
        return self.partials

    def __setstate__(self, state: list[float]) -> None:
        self.partials = state


def _span_above(top: float) -> float:
    """The smallest power of two strictly above ``top``: bin edges over [−2ᵏ, 2ᵏ] are exact
    binary fractions, and no value ever sits on the closed last edge."""
    _, exponent = math.frexp(max(top, 1e-6))
    return math.ldexp(1.0, exponent)


def _widen(histogram: np.ndarray) -> np.ndarray:
    """The same counts over twice the span: pairs of bins merged into the middle half."""
    merged = histogram.reshape(-1, 2).sum(axis=1)
    widened = np.zeros_like(histogram)
    quarter = HISTOGRAM_BINS // 4
    widened[quarter : quarter + merged.size] = merged
    return widened


@dataclass
class TensorStats:
    """Running per-sample statistics of one tensor; :meth:`merge` joins two exactly."""

    count: int = 0
    min_of_min: float = np.inf
    max_of_max: float = -np.inf
    sum_min: ExactSum = field(default_factory=ExactSum, repr=False)
    sum_max: ExactSum = field(default_factory=ExactSum, repr=False)
    sum_absmax: ExactSum = field(default_factory=ExactSum, repr=False)
    histogram: np.ndarray | None = None
    """Counts over ``HISTOGRAM_BINS`` equal bins spanning [−half_width, half_width]."""
    half_width: float = 0.0

    def add(self, minima: np.ndarray, maxima: np.ndarray) -> None:
        minima = minima.astype(np.float64).reshape(-1)
        maxima = maxima.astype(np.float64).reshape(-1)
        self.count += minima.size
        self.min_of_min = min(self.min_of_min, float(minima.min()))
        self.max_of_max = max(self.max_of_max, float(maxima.max()))
        self.sum_min.add(minima.tolist())
        self.sum_max.add(maxima.tolist())
        self.sum_absmax.add(np.maximum(np.abs(minima), np.abs(maxima)).tolist())

    def add_values(self, values: np.ndarray) -> None:
        """Fold raw values into the histogram, doubling its span when they overflow it."""
        values = values.reshape(-1)
        top = float(np.abs(values).max()) if values.size else 0.0
        if self.histogram is None:
            self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
            self.half_width = _span_above(top)
        while top >= self.half_width:
            self.histogram = _widen(self.histogram)
            self.half_width *= 2
        counts, _ = np.histogram(
            values, bins=HISTOGRAM_BINS, range=(-self.half_width, self.half_width)
        )
        self.histogram += counts

    def merge(self, other: TensorStats) -> None:
        """Fold in the statistics of other samples: the result is what one pass over both
        would hold, whatever the order."""
        self.count += other.count
        self.min_of_min = min(self.min_of_min, other.min_of_min)
        self.max_of_max = max(self.max_of_max, other.max_of_max)
        self.sum_min.merge(other.sum_min)
        self.sum_max.merge(other.sum_max)
        self.sum_absmax.merge(other.sum_absmax)
        if other.histogram is None:
            return
        theirs, width = other.histogram, other.half_width
        if self.histogram is None:
            self.histogram, self.half_width = theirs.copy(), width
            return
        while self.half_width < width:
            self.histogram = _widen(self.histogram)
            self.half_width *= 2
        while width < self.half_width:
            theirs, width = _widen(theirs), width * 2
        self.histogram = self.histogram + theirs

    def histogram_centers(self) -> np.ndarray:
        edges = np.linspace(-self.half_width, self.half_width, HISTOGRAM_BINS + 1)
        return (edges[:-1] + edges[1:]) / 2

    @property
    def mean_min(self) -> float:
        return self.sum_min.value / max(self.count, 1)

    @property
    def mean_max(self) -> float:
        return self.sum_max.value / max(self.count, 1)

    @property
    def mean_absmax(self) -> float:
        return self.sum_absmax.value / max(self.count, 1)


def merge_statistics(parts: Sequence[dict[str, TensorStats]]) -> dict[str, TensorStats]:
    """Statistics of shards joined into those of the whole set (exact, order-free)."""
    merged: dict[str, TensorStats] = {}
    for part in parts:
        for tensor, stats in part.items():
            merged.setdefault(tensor, TensorStats()).merge(stats)
    return merged


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
    augmented, outputs = statistics_model(model, tensors, histograms, reader.batch_size > 1)
    session = make_session(augmented, threads=threads, lean=True)
    reader = fit_reader(reader, indices, lambda feeds: session.run(outputs, feeds), memory_limit)
    return fold_batches(
        session.run, outputs, tensors, reader.batches(indices), histograms, progress, len(indices)
    )


def statistics_model(
    model: onnx.ModelProto, tensors: Sequence[str], histograms: bool, per_sample: bool
) -> tuple[onnx.ModelProto, list[str]]:
    """The model extended to output what the statistics read, and the names of those outputs."""
    augmented = ir.from_proto(model)
    adding = AddReductionOutputsPass(tensors, raw=histograms, per_sample=per_sample)
    adding(augmented)
    return ir.to_proto(augmented), list(adding.outputs)


def fold_batches(
    run: Callable[[list[str], dict[str, np.ndarray]], list[np.ndarray]],
    outputs: list[str],
    tensors: Sequence[str],
    batches: Iterable[tuple[list[int], dict[str, np.ndarray]]],
    histograms: bool,
    progress: Progress | None = None,
    total: int = 0,
) -> dict[str, TensorStats]:
    """The statistics of ``batches``, run through the statistics model by ``run``."""
    stats = {t: TensorStats() for t in tensors}
    done = 0
    for batch_indices, feeds in batches:
        results = dict(zip(outputs, run(outputs, feeds), strict=True))
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
            progress(done, total)
    return stats
