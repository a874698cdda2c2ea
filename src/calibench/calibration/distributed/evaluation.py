"""AccuracyAware's evaluations on Ray: the validation set in shards, one per actor.

The driver reads the validation set once, in the batches the local run would make, and puts
each shard in the object store; FP32 runs once per shard, as a task whose result stays in the
object store, and each :class:`~.workers.ShardWorker` is created with its shard and those
outputs. A full evaluation sends the candidate once (``ray.put``), every actor runs it on its
shard, and the driver scores the outputs, in validation order, with the metric: any metric,
the same figure as the local run. The ranking's candidates are built and scored on the actors
from one copy of the :class:`~calibench.calibration.accuracy_aware.candidates.Builder`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx
import ray
from ray.util import ActorPool

from calibench.calibration.accuracy_aware.validator import (
    Batch,
    Build,
    Group,
    Outputs,
    RankingSet,
    run_batches,
)
from calibench.calibration.distributed.workers import ShardWorker, shard_reference
from calibench.calibration.sensitivity import score_metric
from calibench.data.annotations import AnnotatedDataset
from calibench.errors import TargetError
from calibench.metrics.base import Metric
from calibench.runtime.batch_axis import BatchAxes, find_batch_axes
from calibench.runtime.inputs import BatchReader, fit_reader, input_specs
from calibench.runtime.session import make_session


@contextmanager
def cluster_errors(stage: str) -> Iterator[None]:
    """A failure on the cluster (a worker out of retries, calibench missing on a node, the
    cluster gone) as one line that says what to do."""
    try:
        yield
    except ray.exceptions.RayError as error:
        text = str(error)
        hint = (
            "install calibench (pip install 'calibench[ray]') on every node of the cluster"
            if "No module named 'calibench" in text
            else "the Ray dashboard or `ray status` shows the cluster's state"
        )
        lines = [line for line in text.splitlines() if line.strip()]
        raise TargetError(
            f"the Ray cluster failed during {stage}: {type(error).__name__}: "
            f"{(lines[-1] if lines else '')[:300]}; {hint}"
        ) from error


def shards(batches: Iterator[Batch], expected: int, count: int) -> Iterator[list[Batch]]:
    """Consecutive runs of about ``expected / count`` batches, streamed: one shard is held at
    a time on the driver."""
    size = max(1, math.ceil(expected / count))
    shard: list[Batch] = []
    for batch in batches:
        shard.append(batch)
        if len(shard) == size:
            yield shard
            shard = []
    if shard:
        yield shard


class RayEvaluation:
    """:class:`~calibench.calibration.accuracy_aware.validator.Evaluation` over Ray actors."""

    def __init__(
        self,
        fp32: onnx.ModelProto,
        data: AnnotatedDataset,
        metric: Metric,
        indices: list[int],
        batch_size: int,
        threads: int | None,
        memory_limit: int | None,
        workers: int,
        worker_threads: int,
    ) -> None:
        started = time.perf_counter()
        self.data, self.metric, self.threads = data, metric, threads
        self.names = [o.name for o in fp32.graph.output]
        self.full = 0
        self.ranked = 0
        self.seconds = dict.fromkeys(("setup", "evaluate", "rank", "transfer", "score"), 0.0)
        """Driver time by what it waited for (transfer: ``ray.put`` and fetching results)."""
        self.bytes_moved = 0
        reader = BatchReader(data, input_specs(fp32), batch_size)
        probe = make_session(fp32, threads=threads, lean=True)  # the local run's batch size
        reader = fit_reader(reader, indices, lambda f: probe.run(None, f), memory_limit)
        model = self._put(fp32)
        self.batches: list[tuple[list[int], None]] = []
        self.where: list[tuple[int, int, int]] = []
        """Per validation sample in order: (shard, batch in the shard, row in the batch)."""
        self.shard_refs: list[Any] = []
        self.reference_refs: list[Any] = []
        expected = math.ceil(len(indices) / reader.batch_size)
        self.axes: BatchAxes | None = None
        self._first_feeds: dict[str, np.ndarray] = {}
        for number, shard in enumerate(shards(reader.batches(indices), expected, workers)):
            if self.axes is None:  # where each output keeps its batch, as the local run finds
                first = shard[0][1]
                self._first_feeds = first
                self.axes = find_batch_axes(fp32, first, probe.run(None, first), threads)
            for position, (batch_indices, _) in enumerate(shard):
                self.batches.append((batch_indices, None))
                self.where += [(number, position, row) for row in range(len(batch_indices))]
            ref = self._put(shard)
            self.shard_refs.append(ref)
            self.reference_refs.append(shard_reference.remote(model, ref, worker_threads))
        self.shards = [
            [ref, reference]
            for ref, reference in zip(self.shard_refs, self.reference_refs, strict=True)
        ]
        self.actors = [
            ShardWorker.remote(worker_threads, self.names, self.axes)  # type: ignore[attr-defined]
            for _ in self.shards
        ]
        with cluster_errors("the start of the workers"):
            ray.get([a.load.remote(s) for a, s in self._pairs()])
        self.seconds["setup"] = time.perf_counter() - started

    def _pairs(self) -> list[tuple[Any, list[Any]]]:
        return list(zip(self.actors, self.shards, strict=True))

    def _put(self, value: Any) -> Any:
        start = time.perf_counter()
        ref = ray.put(value)
        self.seconds["transfer"] += time.perf_counter() - start
        return ref

    def _gather(self, refs: list[Any], step: str) -> list[Any]:
        """Wait for ``refs``; the wait counts as ``step``, the fetch of results as transfer."""
        start = time.perf_counter()
        with cluster_errors("an evaluation" if step == "evaluate" else "the ranking"):
            ray.wait(refs, num_returns=len(refs), fetch_local=False)
            fetched = time.perf_counter()
            values = ray.get(refs)
        self.seconds[step] += fetched - start
        self.seconds["transfer"] += time.perf_counter() - fetched
        return values

    def _score(self, outs: Outputs) -> float:
        start = time.perf_counter()
        self.bytes_moved += sum(a.nbytes for batch in outs for a in batch)
        assert self.axes is not None
        value = score_metric(self.metric, self.data, self.names, self.batches, outs, self.axes)
        self.seconds["score"] += time.perf_counter() - start
        return value

    def accuracy(self, model: onnx.ModelProto | None = None) -> float:
        if model is None:
            parts = self._gather(self.reference_refs, "evaluate")
        else:
            ref = self._put(model)
            parts = self._gather([a.outputs.remote(s, ref) for a, s in self._pairs()], "evaluate")
            self.full += 1
        return self._score([batch for part in parts for batch in part])

    def divergence(self, model: onnx.ModelProto) -> np.ndarray:
        ref = self._put(model)
        parts = self._gather([a.divergence.remote(s, ref) for a, s in self._pairs()], "rank")
        return np.concatenate(parts)

    def ranking_set(self, picked: list[int]) -> RankingSet:
        wanted: dict[int, list[tuple[int, int]]] = {}
        for k in picked:
            shard, batch, row = self.where[k]
            wanted.setdefault(shard, []).append((batch, row))
        # ``picked`` is sorted and shards are consecutive: shard order is validation order.
        order = sorted(wanted)
        parts = self._gather(
            [self.actors[s].rows.remote(self.shards[s], wanted[s]) for s in order], "rank"
        )
        return RankingSet(
            [b for part in parts for b in part.batches],
            [r for part in parts for r in part.reference],
        )

    def noise(self, model: onnx.ModelProto, subset: RankingSet) -> float:
        # A few samples: run here, with the local run's threads, as the local run does.
        start = time.perf_counter()
        value = subset.noise(run_batches(model, subset.batches, self.threads))
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
        builder, shared = self._put(build), self._put(subset)
        start = time.perf_counter()
        # Any actor scores any candidate; each names its own shard only to be loaded.
        shard_of = {actor: shard for actor, shard in self._pairs()}
        pool = ActorPool(self.actors)
        results: dict[Group, float] = {}
        calls = pool.map(
            lambda actor, group: actor.noise.remote(
                shard_of[actor], builder, reverted, costs, group, shared
            ),
            list(candidates),
        )
        with cluster_errors("the ranking"):
            for done, (group, value) in enumerate(zip(candidates, calls, strict=True), start=1):
                results[group] = value
                if progress:
                    progress(done, len(candidates))
        self.seconds["rank"] += time.perf_counter() - start
        return results

    def first_feeds(self) -> dict[str, np.ndarray]:
        return self._first_feeds

    def timings(self) -> dict[str, float]:
        busy = ray.get([a.busy_seconds.remote() for a in self.actors])
        return {
            **{f"{k}_s": round(v, 3) for k, v in self.seconds.items()},
            "workers_busy_s": round(float(sum(busy)), 3),
            "results_mb": round(self.bytes_moved / 2**20, 1),
        }

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.shards = [], []
        self.shard_refs, self.reference_refs = [], []
