"""Timing candidate models for placement: where the time of a run goes, and whole runs.

Speed-aware placement asks two questions of a runtime, at one batch size and thread count:

* :meth:`ModelTimer.parts`: run these models in turns and say, for each run, how long each part
  took: a layer (named as in the model file), a conversion (``convert:<node>``) or the runtime's
  own layout changes. Timing the few parts a decision changes, run against run, is far steadier
  than timing whole runs on a busy machine;
* :meth:`ModelTimer.interleaved`: whole runs, interleaved (``runtime.latency``), for the check
  that the model chosen is at least as fast as the one it replaces.

:class:`OrtTimer` answers both with ONNX Runtime's profiler; another runtime (OpenVINO's
per-layer performance counters) plugs in by implementing the same two methods.
"""

from __future__ import annotations

import bisect
import json
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx

from calibench.runtime.kernels import CONVERSIONS
from calibench.runtime.latency import Interleaved, block_turn, interleaved
from calibench.runtime.pooled import interleaved_pooled
from calibench.runtime.profiling import CONVERT as CONVERT_BUCKET
from calibench.runtime.profiling import LayerResolver
from calibench.runtime.session import make_session

MIN_RUNS = 5
"""Runs a timing gets even past its budget: fewer give no median worth deciding on."""
CONVERT = "convert:"
"""Prefix of a conversion part: ``convert:<QuantizeLinear or DequantizeLinear node name>``."""
_TOKEN = re.compile(r"(_token_\d+)+$")

Parts = dict[str, np.ndarray]
"""Part (layer, ``convert:<node>``, ``(layout)``, ``(other)``) → ms in each run."""


class ModelTimer(Protocol):
    """Times models on one runtime at one batch size and thread count."""

    batch: int
    threads: int

    def parts(
        self, models: Sequence[onnx.ModelProto], runs: int, budget_s: float | None = None
    ) -> list[Parts]:
        """Run each model ``runs`` times, one run of each per round (fewer, but at least
        :data:`MIN_RUNS`, once ``budget_s`` seconds have passed); per model, the time of each of
        its parts in each run (equal-length arrays, run ``i`` of every model from one round)."""
        ...

    def interleaved(self, models: Mapping[str, onnx.ModelProto], budget_s: float) -> Interleaved:
        """Whole runs of the models, interleaved, for about ``budget_s`` seconds."""
        ...

    def release(self) -> None:
        """Free what the timer keeps between calls (compiled models); it still works after."""
        ...


def tensor_of(part: str) -> str:
    """The tensor (or layer) a conversion part belongs to: calibench names its Q/DQ nodes
    ``<tensor>::QuantizeLinear``, ``<tensor>::DequantizeLinear<k>`` and ``<layer>::weight…``."""
    return part[len(CONVERT) :].split("::")[0] if part.startswith(CONVERT) else part


class OrtTimer:
    """:class:`ModelTimer` on ONNX Runtime's CPU provider, with fixed inputs ``feeds``."""

    WARMUP = 3

    def __init__(self, feeds: Mapping[str, np.ndarray], batch: int, threads: int) -> None:
        self.feeds = dict(feeds)
        self.batch = batch
        self.threads = threads

    def parts(
        self, models: Sequence[onnx.ModelProto], runs: int, budget_s: float | None = None
    ) -> list[Parts]:
        with tempfile.TemporaryDirectory(prefix="calibench-timer-") as tmp:
            sessions = [
                make_session(m, threads=self.threads, profile_prefix=str(Path(tmp) / f"m{i}"))
                for i, m in enumerate(models)
            ]
            start = time.perf_counter()
            try:
                for round_ in range(self.WARMUP + runs):
                    measured = round_ - self.WARMUP
                    late = budget_s is not None and time.perf_counter() - start > budget_s
                    if late and measured >= MIN_RUNS:
                        runs = measured
                        break
                    offset = round_ % len(sessions)
                    for session in sessions[offset:] + sessions[:offset]:
                        session.run(None, self.feeds)
            finally:
                files = [Path(s.end_profiling()) for s in sessions]
            events = [json.loads(f.read_text()) for f in files]
        return [
            _per_run(e, LayerResolver(m), self.WARMUP, runs)
            for e, m in zip(events, models, strict=True)
        ]

    def interleaved(self, models: Mapping[str, onnx.ModelProto], budget_s: float) -> Interleaved:
        if self.threads > 1:  # sessions' own pools would contend: see runtime.pooled
            return interleaved_pooled(models, self.feeds, self.threads, budget_s)
        turns = {}
        for name, model in models.items():
            session = make_session(model, threads=self.threads)
            turns[name] = block_turn(
                lambda s=session: s.run(None, self.feeds),  # type: ignore[misc]
                block=5,
                discard=1,
            )
        return interleaved(turns, min_rounds=7, max_rounds=400, budget_s=budget_s, warmup=2)

    def release(self) -> None:
        """Nothing kept: every call makes its own sessions."""


def _per_run(
    events: list[dict[str, Any]], resolver: LayerResolver, warmup: int, runs: int
) -> Parts:
    starts = sorted(
        float(e["ts"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    if len(starts) < warmup + runs:
        raise RuntimeError(
            f"ONNX Runtime's profile holds {len(starts)} runs, expected {warmup + runs}"
        )
    bounds = starts[warmup:]
    parts: Parts = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        index = bisect.bisect_right(bounds, float(event["ts"])) - 1
        if index < 0 or index >= runs:
            continue
        kernel = name[: -len("_kernel_time")]
        op = str(event.get("args", {}).get("op_name", ""))
        layer = resolver.layer_of(kernel, op)
        if op in CONVERSIONS or layer == CONVERT_BUCKET:
            layer = CONVERT + _TOKEN.sub("", kernel)  # which tensor it converts matters here
        parts.setdefault(layer, np.zeros(runs))[index] += float(event["dur"]) / 1000
    return parts
