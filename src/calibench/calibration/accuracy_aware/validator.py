"""The validation set as AccuracyAware evaluates on it: inputs read once, FP32 run once.

Every candidate model is compared with FP32's kept outputs, so FP32 never runs again; inputs
and those outputs stay in memory up to a share of the memory limit and spill to disk beyond.

The method reaches the validation set through :class:`Evaluation` only: :class:`Validator` is
the in-process one; ``calibration.distributed`` holds the set in shards on Ray actors. Both run
the same functions here (:func:`divergence_per_sample`, :meth:`RankingSet.noise`) on the same
batches, so they return the same floats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import onnx

from calibench.calibration.sensitivity import revert_each, score_metric
from calibench.data.annotations import AnnotatedDataset
from calibench.metrics.base import Metric
from calibench.passes.placement import QuantPlan
from calibench.runtime.batch_axis import BatchAxes, find_batch_axes
from calibench.runtime.inputs import BatchReader, fit_reader, input_specs
from calibench.runtime.session import make_session
from calibench.runtime.spill import SpillList


class Feeds(Sequence[tuple[list[int], dict[str, np.ndarray]]]):
    """Validation batches as (sample indices, feeds), spilled to disk past the budget."""

    def __init__(self, names: list[str], budget: int | None) -> None:
        self.names = names
        self.indices: list[list[int]] = []
        self.arrays = SpillList(budget)

    def append(self, indices: list[int], feeds: dict[str, np.ndarray]) -> None:
        self.indices.append(indices)
        self.arrays.append([feeds[n] for n in self.names])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[list[int], dict[str, np.ndarray]]:  # type: ignore[override]
        return self.indices[index], dict(zip(self.names, self.arrays[index], strict=True))

    def __iter__(self) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        for index in range(len(self.indices)):
            yield self[index]


Batch = tuple[list[int], dict[str, np.ndarray]]
Outputs = list[list[np.ndarray]]
"""Per batch, the model's outputs in graph order."""
Group = tuple[str, ...]
"""Layers a ranking candidate reverts together (one layer, or a block of neighbours)."""
Build = Callable[[Sequence[str], dict[str, float]], tuple[QuantPlan, onnx.ModelProto]]
"""``(reverted, costs) -> (plan, model)``: the candidate with those layers in FP32."""


@dataclass(frozen=True)
class RankingSet:
    """The validation samples the ranking scores on, one per batch, with FP32's outputs."""

    batches: list[Batch]
    reference: Outputs

    def noise(self, outs: Outputs) -> float:
        """Squared error of ``outs`` against FP32 over the ranking samples."""
        return sum(
            float(((r - g) ** 2).sum())
            for rb, gb in zip(self.reference, outs, strict=True)
            for r, g in zip(rb, gb, strict=True)
        )


def divergence_per_sample(
    sizes: Sequence[int],
    reference: Sequence[Sequence[np.ndarray]],
    outs: Outputs,
    names: Sequence[str],
    axes: BatchAxes,
) -> np.ndarray:
    """Per validation sample: squared error against FP32 over FP32's energy (each output split
    along its own batch axis; ``sizes``: the samples of each batch)."""
    values = []
    for n, ref_batch, got_batch in zip(sizes, reference, outs, strict=True):
        ref, got = _flat(ref_batch, n, names, axes), _flat(got_batch, n, names, axes)
        noise = sum(((r - g) ** 2).sum(1) for r, g in zip(ref, got, strict=True))
        signal = sum((r**2).sum(1) for r in ref)
        values.append(noise / np.maximum(signal, 1e-12))
    return np.concatenate(values)


def _flat(
    batch: Sequence[np.ndarray], n: int, names: Sequence[str], axes: BatchAxes
) -> list[np.ndarray]:
    """Each output as [n, -1]: one row per sample, split along the output's batch axis."""
    return [axes.rows(k, o, n).reshape(n, -1) for k, o in zip(names, batch, strict=True)]


def reference_rows(
    batch: Sequence[np.ndarray], row: int, names: Sequence[str], axes: BatchAxes
) -> list[np.ndarray]:
    """One sample's outputs of a batch, each as a batch of one along its own axis."""
    return [
        o if axes.axes[k] is None else np.take(o, [row], axis=axes.axes[k])
        for k, o in zip(names, batch, strict=True)
    ]


def run_batches(model: onnx.ModelProto, batches: Sequence[Batch], threads: int | None) -> Outputs:
    session = make_session(model, threads=threads, lean=True)
    return [session.run(None, feeds) for _, feeds in batches]


class Evaluation(Protocol):
    """What AccuracyAware asks of the validation set, wherever it is held."""

    full: int
    """Full validation evaluations spent (FP32 counts once)."""
    ranked: int
    """Candidates scored on the ranking subset."""

    def accuracy(self, model: onnx.ModelProto | None = None) -> float:
        """The metric of ``model`` (FP32 when None) on the whole validation set."""
        ...

    def divergence(self, model: onnx.ModelProto) -> np.ndarray:
        """Per sample, in validation order: :func:`divergence_per_sample`."""
        ...

    def ranking_set(self, picked: list[int]) -> RankingSet:
        """The samples at these positions (in validation order), one per batch."""
        ...

    def noise(self, model: onnx.ModelProto, subset: RankingSet) -> float: ...

    def noise_each(
        self,
        build: Build,
        reverted: list[str],
        costs: dict[str, float],
        candidates: Sequence[Group],
        subset: RankingSet,
        progress: Callable[[int, int], None] | None,
    ) -> dict[Group, float]:
        """For each candidate (layers reverted together): ``subset.noise`` of the model with
        them reverted too."""
        ...

    def timings(self) -> dict[str, float]:
        """Seconds by what they went to (``evaluate_s``, ``rank_s``, …), for the report."""
        ...

    def first_feeds(self) -> dict[str, np.ndarray]:
        """The inputs of the first validation batch: what speed is timed on."""
        ...

    def close(self) -> None: ...


class Validator:
    """Runs models on the validation samples in this process; remembers FP32's outputs."""

    def __init__(
        self,
        fp32: onnx.ModelProto,
        data: AnnotatedDataset,
        metric: Metric,
        indices: list[int],
        batch_size: int,
        threads: int | None,
        memory_limit: int | None = None,
    ) -> None:
        self.data, self.metric, self.threads = data, metric, threads
        self.names = [o.name for o in fp32.graph.output]
        self.specs = input_specs(fp32)
        reader = BatchReader(data, self.specs, batch_size)
        reference = make_session(fp32, threads=threads, lean=True)
        reader = fit_reader(reader, indices, lambda f: reference.run(None, f), memory_limit)
        # Inputs and FP32's outputs are kept for every evaluation, in memory up to a quarter of the
        # memory limit each and on disk beyond it (a detector's outputs alone can be gigabytes).
        budget = None if memory_limit is None else memory_limit // 4
        self.batches = Feeds([s.name for s in self.specs], budget)
        for batch_indices, feeds in reader.batches(indices):
            self.batches.append(batch_indices, feeds)
        self.full = 0
        self.ranked = 0
        self.seconds = {"evaluate": 0.0, "rank": 0.0}
        self.reference = SpillList(budget)
        for _, feeds in self.batches:
            self.reference.append(reference.run(None, feeds))
        first = self.batches[0][1] if len(self.batches) else {}
        self.axes = find_batch_axes(fp32, first, self.reference[0] if first else [], threads)
        """Where each output keeps its batch axis (a CTC reader's is axis 1, not 0)."""

    def outputs(
        self,
        model: onnx.ModelProto,
        batches: Sequence[Any] | None = None,
        threads: int | None = None,
    ) -> list[list[np.ndarray]]:
        session = make_session(model, threads=threads or self.threads, lean=True)
        return [session.run(None, feeds) for _, feeds in (batches or self.batches)]

    def accuracy(self, model: onnx.ModelProto | None = None) -> float:
        start = time.perf_counter()
        outs = self.reference if model is None else self.outputs(model)
        if model is not None:
            self.full += 1
        value = score_metric(self.metric, self.data, self.names, self.batches, outs, self.axes)
        self.seconds["evaluate"] += time.perf_counter() - start
        return value

    def divergence_per_sample(self, outs: list[list[np.ndarray]]) -> np.ndarray:
        """Per validation sample: squared error against FP32 over FP32's energy."""
        sizes = [len(indices) for indices, _ in self.batches]
        return divergence_per_sample(sizes, self.reference, outs, self.names, self.axes)

    def divergence(self, model: onnx.ModelProto) -> np.ndarray:
        start = time.perf_counter()
        value = self.divergence_per_sample(self.outputs(model))
        self.seconds["rank"] += time.perf_counter() - start
        return value

    def ranking_set(self, picked: list[int]) -> RankingSet:
        flat = [(i, j) for i, (idx, _) in enumerate(self.batches) for j in range(len(idx))]
        rows = [flat[k] for k in picked]
        return RankingSet(
            [([0], {n: a[j : j + 1] for n, a in self.batches[i][1].items()}) for i, j in rows],
            [self.reference_sample(i, j) for i, j in rows],
        )

    def reference_sample(self, batch: int, row: int) -> list[np.ndarray]:
        """FP32's outputs for one sample of a batch, each as a batch of one along its own axis."""
        return reference_rows(self.reference[batch], row, self.names, self.axes)

    def noise(self, model: onnx.ModelProto, subset: RankingSet) -> float:
        start = time.perf_counter()
        value = subset.noise(self.outputs(model, subset.batches))
        self.seconds["rank"] += time.perf_counter() - start
        return value

    def noise_each(
        self,
        build: Build,
        reverted: list[str],
        costs: dict[str, float],
        candidates: Sequence[Group],
        subset: RankingSet,
        progress: Callable[[int, int], None] | None,
    ) -> dict[Group, float]:
        def run(group: Group) -> list[list[np.ndarray]]:
            _, candidate = build([*reverted, *group], costs)
            return self.outputs(candidate, subset.batches, threads=1)

        start = time.perf_counter()
        value = revert_each(candidates, run, subset.noise, progress)
        self.seconds["rank"] += time.perf_counter() - start
        return value

    def timings(self) -> dict[str, float]:
        return {f"{k}_s": round(v, 3) for k, v in self.seconds.items()}

    def first_feeds(self) -> dict[str, np.ndarray]:
        return self.batches[0][1]

    def close(self) -> None:
        """Nothing to release: the spilled files go with the lists."""
