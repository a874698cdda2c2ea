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
from calibench.runtime.backend import Request, Runtime
from calibench.runtime.compile import compile_model
from calibench.runtime.conditions import MeasuredOn
from calibench.runtime.latency import interleaved
from calibench.workflow.measured import measurement


@dataclass(frozen=True)
class PerfSettings:
    batch: int = 1
    streams: int = 1
    threads: int | None = None
    """Threads per stream; default: the cores shared out between the streams."""
    seconds: float = 3.0
    warmup: int = 3
    runtime: Runtime = Runtime.ONNXRUNTIME

    def __post_init__(self) -> None:
        object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        if self.batch < 1 or self.streams < 1:
            raise ConfigError("batch size and streams must be at least 1")
        if self.seconds <= 0:
            raise ConfigError("the measurement must last more than 0 seconds")

    def resolved_threads(self) -> int:
        return self.threads or max(1, (os.cpu_count() or 1) // self.streams)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["threads"] = self.resolved_threads()
        data["runtime"] = self.runtime.value
        return data

    def measured_on(self) -> MeasuredOn:
        return MeasuredOn(self.runtime, self.batch, self.resolved_threads(), self.streams)


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
    measured_on: dict[str, Any] | None = None
    """The conditions beside the figures (:class:`~calibench.runtime.conditions.MeasuredOn`)."""

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
    compiled = {
        name: compile_model(
            settings.runtime,
            m,
            threads=settings.resolved_threads(),
            streams=settings.streams,
            shapes={k: v.shape for k, v in batch.items()},
        )
        for name, m in models.items()
    }
    # One request per stream, made once: OpenVINO's requests are not shared between threads.
    requests = {
        name: [c.request() for _ in range(settings.streams)] for name, c in compiled.items()
    }
    for per_stream in requests.values():
        for _ in range(settings.warmup):
            per_stream[0](batch)
    seconds = settings.seconds / windows
    timed = interleaved(
        {
            name: partial(_window, per_stream, batch, seconds)
            for name, per_stream in requests.items()
        },
        min_rounds=windows,
    )
    stamp = measurement(list(compiled), runtime=settings.runtime.value).to_dict()
    measured_on = settings.measured_on().to_dict()
    results = {}
    for name in compiled:
        flat = np.array(timed.latencies(name))
        results[name] = PerfResult(
            latency_ms_median=float(np.median(flat)),
            latency_ms_p90=float(np.percentile(flat, 90)),
            latency_ms_p99=float(np.percentile(flat, 99)),
            throughput=float(len(flat) * settings.batch / timed.walls[name]),
            requests=len(flat),
            settings=settings.to_dict(),
            measured=stamp,
            measured_on=measured_on,
        )
    return results


def _window(requests: list[Request], batch: dict[str, np.ndarray], seconds: float) -> list[float]:
    """One thread per stream runs requests until the window closes; their latencies in ms."""
    latencies: list[list[float]] = [[] for _ in requests]
    deadline = time.perf_counter() + seconds

    def stream(index: int) -> None:
        run = requests[index]
        while time.perf_counter() < deadline or not latencies[index]:
            start = time.perf_counter()
            run(batch)
            latencies[index].append((time.perf_counter() - start) * 1000)

    workers = [threading.Thread(target=stream, args=(i,)) for i in range(len(requests))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [t for per in latencies for t in per]
