"""Latency and throughput at DL Workbench's inference settings: batch size × parallel streams.

``streams`` requests run at once on one session, each on ``cores / streams`` threads; latency is
per request, throughput counts samples over the wall time of the whole measurement.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from calibench.errors import ConfigError
from calibench.runtime.latency import interleaved
from calibench.runtime.session import make_session
from calibench.workflow.measured import measurement


@dataclass(frozen=True)
class PerfSettings:
    batch: int = 1
    streams: int = 1
    threads: int | None = None
    """Threads per stream; default: the cores shared out between the streams."""
    seconds: float = 3.0
    warmup: int = 3

    def __post_init__(self) -> None:
        if self.batch < 1 or self.streams < 1:
            raise ConfigError("batch size and streams must be at least 1")
        if self.seconds <= 0:
            raise ConfigError("the measurement must last more than 0 seconds")

    def resolved_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.streams)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["threads"] = self.resolved_threads()
        return data


@dataclass(frozen=True)
class PerfResult:
    latency_ms_median: float
    latency_ms_p90: float
    latency_ms_p99: float
    throughput: float
    """samples per second"""
    requests: int
    settings: dict[str, Any]
    measured: dict[str, Any] | None = None
    """Where, how and when (:mod:`calibench.workflow.measured`): shown beside the figures."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_performance(
    model: onnx.ModelProto | Path, feeds: dict[str, np.ndarray], settings: PerfSettings
) -> PerfResult:
    """Time ``model`` on ``feeds`` (one sample per input, batch axis included, repeated to the
    batch size) for ``settings.seconds`` after warm-up."""
    return measure_interleaved({"model": model}, feeds, settings, windows=1)["model"]


def measure_interleaved(
    models: dict[str, onnx.ModelProto | Path],
    feeds: dict[str, np.ndarray],
    settings: PerfSettings,
    windows: int = 3,
) -> dict[str, PerfResult]:
    """Time several models in alternating windows (A B, B A, …: :func:`~calibench.runtime.latency.
    interleaved`), ``settings.seconds`` each in all, so that a change in the machine's load falls
    on all of them alike. Throughput counts samples over the time spent in a model's windows."""
    batch = {k: np.repeat(v[:1], settings.batch, axis=0) for k, v in feeds.items()}
    sessions = {
        name: make_session(m, threads=settings.resolved_threads()) for name, m in models.items()
    }
    for session in sessions.values():
        for _ in range(settings.warmup):
            session.run(None, batch)
    seconds = settings.seconds / windows
    timed = interleaved(
        {
            name: partial(_window, session, batch, settings.streams, seconds)
            for name, session in sessions.items()
        },
        min_rounds=windows,
    )
    stamp = measurement(list(sessions)).to_dict()
    results = {}
    for name in sessions:
        flat = np.array(timed.latencies(name))
        results[name] = PerfResult(
            latency_ms_median=float(np.median(flat)),
            latency_ms_p90=float(np.percentile(flat, 90)),
            latency_ms_p99=float(np.percentile(flat, 99)),
            throughput=float(len(flat) * settings.batch / timed.walls[name]),
            requests=len(flat),
            settings=settings.to_dict(),
            measured=stamp,
        )
    return results


def _window(
    session: Any, batch: dict[str, np.ndarray], streams: int, seconds: float
) -> list[float]:
    """``streams`` threads run requests until the window closes; their latencies in ms."""
    latencies: list[list[float]] = [[] for _ in range(streams)]
    deadline = time.perf_counter() + seconds

    def stream(index: int) -> None:
        while time.perf_counter() < deadline or not latencies[index]:
            start = time.perf_counter()
            session.run(None, batch)
            latencies[index].append((time.perf_counter() - start) * 1000)

    workers = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [t for per in latencies for t in per]
