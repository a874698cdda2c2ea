"""Latency of several models measured interleaved, so machine noise hits them all alike."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p90_ms: float
    runs: int


def interleaved_latency(
    sessions: Mapping[str, ort.InferenceSession],
    feeds: dict[str, np.ndarray],
    runs: int = 50,
    warmup: int = 5,
) -> dict[str, Latency]:
    """Run each session once per round, ``runs`` rounds, after ``warmup`` rounds."""
    timings: dict[str, list[float]] = {name: [] for name in sessions}
    for round_index in range(warmup + runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feeds)
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                timings[name].append(elapsed * 1000)
    return {
        name: Latency(float(np.median(t)), float(np.percentile(t, 90)), len(t))
        for name, t in timings.items()
    }
