"""What runs on the Ray cluster: the statistics of a shard of the calibration set, FP32's
outputs on a shard of the validation set, and :class:`ShardWorker`, the actor that holds one
validation shard and measures candidate models on it.

Imports Ray at module level: only :mod:`.backend` imports this module, once a cluster is
asked for. Each function runs the very code the local path runs (``fold_batches``,
``run_batches``, ``divergence_per_sample``, ``RankingSet.noise``) on the same batches, so it
returns the same numbers.

Faults: a task is retried (``max_retries``) and an actor restarted (``max_restarts``) with its
call retried (``max_task_retries``). A restarted actor gets its shard and FP32's outputs back
from the object store: every call carries their refs, and the driver holds them until the job
ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import ray

from calibench.calibration.accuracy_aware.candidates import Builder
from calibench.calibration.accuracy_aware.validator import (
    Batch,
    Outputs,
    RankingSet,
    divergence_per_sample,
    reference_rows,
    run_batches,
)
from calibench.calibration.statistics import TensorStats, fold_batches
from calibench.runtime.batch_axis import BatchAxes
from calibench.runtime.session import make_session

RETRIES = 3
"""Times a lost task is run again, or a dead actor started again, before the job fails."""


@ray.remote(num_cpus=1, max_retries=RETRIES)
def shard_statistics(
    model: onnx.ModelProto,
    outputs: list[str],
    tensors: Sequence[str],
    batches: list[Batch],
    histograms: bool,
    threads: int,
) -> dict[str, TensorStats]:
    session = make_session(model, threads=threads, lean=True)
    return fold_batches(session.run, outputs, tensors, batches, histograms)


@ray.remote(num_cpus=1, max_retries=RETRIES)
def shard_reference(model: onnx.ModelProto, batches: list[Batch], threads: int) -> Outputs:
    """FP32's outputs on one shard: computed once, then kept in the object store."""
    return run_batches(model, batches, threads)


@ray.remote(num_cpus=1, max_restarts=RETRIES, max_task_retries=RETRIES)
class ShardWorker:
    """One shard of the validation set and FP32's outputs for it; runs candidates on it."""

    def __init__(self, threads: int, names: list[str], axes: BatchAxes) -> None:
        self.threads, self.names, self.axes = threads, names, axes
        self.loaded: tuple[list[Batch], Outputs] | None = None
        self.busy = 0.0
        """Seconds spent computing (since this process started)."""

    def _load(self, shard: list[Any]) -> tuple[list[Batch], Outputs]:
        """Every call carries the shard's two object refs (inputs, FP32's outputs), unresolved:
        the first call after a start, or a restart, fetches them from the object store."""
        if self.loaded is None:
            batches, reference = ray.get(shard)
            self.loaded = batches, reference
        return self.loaded

    def busy_seconds(self) -> float:
        return self.busy

    def load(self, shard: list[Any]) -> int:
        self._load(shard)
        return os.getpid()

    def outputs(self, shard: list[Any], model: onnx.ModelProto) -> Outputs:
        batches, _ = self._load(shard)
        start = time.perf_counter()
        try:
            return run_batches(model, batches, self.threads)
        finally:
            self.busy += time.perf_counter() - start

    def divergence(self, shard: list[Any], model: onnx.ModelProto) -> np.ndarray:
        batches, reference = self._load(shard)
        sizes = [len(indices) for indices, _ in batches]
        outs = self.outputs(shard, model)
        return divergence_per_sample(sizes, reference, outs, self.names, self.axes)

    def rows(self, shard: list[Any], positions: list[tuple[int, int]]) -> RankingSet:
        """The samples at (batch, row) of this shard, one per batch, with FP32's outputs."""
        batches, reference = self._load(shard)
        return RankingSet(
            [([0], {n: a[j : j + 1] for n, a in batches[i][1].items()}) for i, j in positions],
            [reference_rows(reference[i], j, self.names, self.axes) for i, j in positions],
        )

    def noise(
        self,
        shard: list[Any],
        build: Builder,
        reverted: list[str],
        costs: dict[str, float],
        group: tuple[str, ...],
        subset: RankingSet,
    ) -> float:
        """The ranking's score of one candidate: ``group`` reverted on top of ``reverted``."""
        self._load(shard)
        start = time.perf_counter()
        try:
            _, candidate = build([*reverted, *group], costs)
            return subset.noise(run_batches(candidate, subset.batches, self.threads))
        finally:
            self.busy += time.perf_counter() - start
