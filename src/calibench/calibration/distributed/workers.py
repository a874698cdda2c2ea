"""What runs on the Ray cluster: the statistics of a shard of the calibration set, FP32's
outputs on a shard of the validation set, and :class:`ShardWorker`, the actor that holds one
validation shard and measures candidate models on it.

Imports Ray at module level: only :mod:`.backend` imports this module, once a cluster is
asked for. Each function runs the very code the local path runs (``fold_batches``,
``run_batches``, ``divergence_per_sample``, ``RankingSet.noise``) on the same batches, so it
returns the same numbers.

Faults: a task is retried (``max_retries``) and an actor restarted (``max_restarts``) with its
call retried (``max_task_retries``). A restarted actor gets its shard and FP32's outputs back
from the object store: it is created with their refs, and the driver holds them until the job
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
    run_batches,
)
from calibench.calibration.statistics import TensorStats, fold_batches
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

    def __init__(self, shard: list[Any], threads: int) -> None:
        # ``shard`` holds the two object refs (inputs, FP32's outputs) unresolved, so the actor
        # fetches them itself: again after a restart, while the driver keeps them alive.
        self.batches, self.reference = ray.get(shard)
        self.threads = threads
        self.busy = 0.0
        """Seconds spent computing (since this process started)."""

    def pid(self) -> int:
        return os.getpid()

    def busy_seconds(self) -> float:
        return self.busy

    def outputs(self, model: onnx.ModelProto) -> Outputs:
        start = time.perf_counter()
        try:
            return run_batches(model, self.batches, self.threads)
        finally:
            self.busy += time.perf_counter() - start

    def divergence(self, model: onnx.ModelProto) -> np.ndarray:
        return divergence_per_sample(self.reference, self.outputs(model))

    def rows(self, positions: list[tuple[int, int]]) -> RankingSet:
        """The samples at (batch, row) of this shard, one per batch, with FP32's outputs."""
        return RankingSet(
            [([0], {n: a[j : j + 1] for n, a in self.batches[i][1].items()}) for i, j in positions],
            [[o[j : j + 1] for o in self.reference[i]] for i, j in positions],
        )

    def noise(
        self,
        build: Builder,
        reverted: list[str],
        costs: dict[str, float],
        name: str,
        subset: RankingSet,
    ) -> float:
        """The ranking's score of one candidate: ``name`` reverted on top of ``reverted``."""
        start = time.perf_counter()
        try:
            _, candidate = build([*reverted, name], costs)
            return subset.noise(run_batches(candidate, subset.batches, self.threads))
        finally:
            self.busy += time.perf_counter() - start
