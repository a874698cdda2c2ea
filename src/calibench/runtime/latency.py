"""Latency of several models measured interleaved, so that machine noise hits them all alike.

One scheduler serves the demo, the FP32-vs-INT8 comparison and the benchmarks: each round gives
every model one *turn*, in an order rotated from round to round, so slow drifts of the machine
(frequency, noisy neighbours, a model running right after another one evicted the caches) fall
on all models alike. What a turn is depends on the caller:

- :func:`block_turn`: ``block`` consecutive runs, the first ``discard`` not kept (right after a
  switch a model runs on caches the previous model has evicted, which is not how a deployed
  model runs);
- a time window in which several streams run requests at once (``workflow.performance``).

A runner is any callable that runs the model once, so ONNX Runtime sessions and other runtimes
(the benchmarks time OpenVINO) are timed the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

Runner = Callable[[], object]
"""Runs the model once on fixed inputs."""
Turn = Callable[[], list[float]]
"""One model's turn in a round: the latencies (ms) it measured."""


def block_turn(run: Runner, block: int = 1, discard: int = 0) -> Turn:
    """A turn of ``block`` consecutive runs of which the first ``discard`` are dropped."""

    def turn() -> list[float]:
        kept = []
        for i in range(block):
            start = time.perf_counter_ns()
            run()
            if i >= discard:
                kept.append((time.perf_counter_ns() - start) / 1e6)
        return kept

    return turn


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    p99_ms: float
    runs: int

    @classmethod
    def of(cls, values: list[float]) -> Latency:
        flat = np.asarray(values, dtype=np.float64)
        p10, p50, p90, p99 = np.percentile(flat, [10, 50, 90, 99])
        return cls(float(p50), float(p10), float(p90), float(p99), len(values))


@dataclass(frozen=True)
class Interleaved:
    """What :func:`interleaved` measured: every turn's latencies, and the time spent in turns."""

    turns: dict[str, list[list[float]]]
    """Model → the latencies (ms) of each of its turns, in round order."""
    walls: dict[str, float]
    """Model → seconds spent in its turns (for throughput)."""
    rounds: int
    seconds: float

    def latencies(self, name: str) -> list[float]:
        return [t for turn in self.turns[name] for t in turn]

    def latency(self, name: str) -> Latency:
        return Latency.of(self.latencies(name))

    def paired_speedup(self, reference: str, name: str) -> float:
        """Median over rounds of (reference's turn median / ``name``'s turn median): a ratio
        of neighbours in time, so it holds even while the machine's speed drifts."""
        ratios = [
            float(np.median(a) / np.median(b))
            for a, b in zip(self.turns[reference], self.turns[name], strict=True)
        ]
        return float(np.median(ratios))


def interleaved(
    turns: Mapping[str, Turn],
    min_rounds: int = 1,
    max_rounds: int | None = None,
    budget_s: float = 0.0,
    warmup: int = 0,
) -> Interleaved:
    """Give each model ``warmup`` turns untimed, then one turn per round in rotating order:
    at least ``min_rounds`` rounds, more while ``budget_s`` seconds have not passed, never
    more than ``max_rounds`` (default: ``min_rounds``)."""
    names = list(turns)
    for name in names:
        for _ in range(warmup):
            turns[name]()
    limit = min_rounds if max_rounds is None else max_rounds
    measured: dict[str, list[list[float]]] = {name: [] for name in names}
    walls = dict.fromkeys(names, 0.0)
    start = time.perf_counter()
    rounds = 0
    while (
        names and rounds < limit and (rounds < min_rounds or time.perf_counter() - start < budget_s)
    ):
        offset = rounds % len(names)
        for name in names[offset:] + names[:offset]:
            begin = time.perf_counter()
            measured[name].append(turns[name]())
            walls[name] += time.perf_counter() - begin
        rounds += 1
    return Interleaved(measured, walls, rounds, time.perf_counter() - start)
