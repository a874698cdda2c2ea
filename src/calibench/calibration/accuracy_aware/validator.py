"""The validation set as AccuracyAware evaluates on it: inputs read once, FP32 run once.

Every candidate model is compared with FP32's kept outputs, so FP32 never runs again; inputs
and those outputs stay in memory up to a share of the memory limit and spill to disk beyond.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx

from calibench.calibration.sensitivity import score_metric
from calibench.data.annotations import AnnotatedDataset
from calibench.metrics.base import Metric
from calibench.runtime.batch_axis import find_batch_axes
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


class Validator:
    """Runs models on the validation samples; remembers FP32's outputs."""

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
        outs = self.reference if model is None else self.outputs(model)
        if model is not None:
            self.full += 1
        return score_metric(self.metric, self.data, self.names, self.batches, outs, self.axes)

    def divergence_per_sample(self, outs: list[list[np.ndarray]]) -> np.ndarray:
        """Per validation sample: squared error against FP32 over FP32's energy."""
        values = []
        batches = zip(self.batches, self.reference, outs, strict=True)
        for (indices, _), ref_batch, got_batch in batches:
            ref, got = self._flat(ref_batch, len(indices)), self._flat(got_batch, len(indices))
            noise = sum(((r - g) ** 2).sum(1) for r, g in zip(ref, got, strict=True))
            signal = sum((r**2).sum(1) for r in ref)
            values.append(noise / np.maximum(signal, 1e-12))
        return np.concatenate(values)

    def _flat(self, batch: Sequence[np.ndarray], n: int) -> list[np.ndarray]:
        """Each output as [n, -1]: one row per sample, split along the output's batch axis."""
        return [
            self.axes.rows(k, o, n).reshape(n, -1) for k, o in zip(self.names, batch, strict=True)
        ]

    def reference_sample(self, batch: int, row: int) -> list[np.ndarray]:
        """FP32's outputs for one sample of a batch, each as a batch of one along its own axis."""
        axes = [self.axes.axes[k] for k in self.names]
        return [
            o if axis is None else np.take(o, [row], axis=axis)
            for axis, o in zip(axes, self.reference[batch], strict=True)
        ]
