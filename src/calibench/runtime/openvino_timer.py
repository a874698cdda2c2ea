"""Timing candidate models on OpenVINO's CPU plugin, for speed-aware placement.

``calibrate --runtime openvino`` writes a model whose quantizers sit where OpenVINO wants them
(``passes.placement_openvino``); whether INT8 pays for a layer there is OpenVINO's question,
not ONNX Runtime's: its kernels, fusions and layout changes differ. :class:`OvTimer` answers
the two questions of :class:`~calibench.runtime.timer.ModelTimer` with OpenVINO:

* **parts**: each model is compiled once (and kept for the next calls), with the settings of
  the OpenVINO runtime path (``runtime.openvino``: f32 precision hint, one stream, the latency
  hint, the threads of the measurement, the inputs' static shapes) and ``PERF_COUNT`` on; the
  models run in turns, one run of each per round in a rotated order, and after every run each
  request's profiling info gives every kernel's time. Kernels are read back onto the ONNX
  file's layers by the same resolver as the layer table (``runtime.openvino_layers``), so the
  parts are named as :class:`~calibench.runtime.timer.OrtTimer` names them: a layer by its
  ONNX node name, a quantizer left standing as ``convert:<its Q/DQ node name>``, Reorders as
  ``(layout)``;
* **interleaved**: whole runs of the models compiled without counters, interleaved
  (``runtime.latency``).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from calibench.runtime.latency import Interleaved, block_turn, interleaved
from calibench.runtime.openvino import compile_openvino
from calibench.runtime.openvino_layers import read_runtime_graph
from calibench.runtime.profiling import OTHER
from calibench.runtime.timer import CONVERT, MIN_RUNS, Parts


class OvTimer:
    """:class:`~calibench.runtime.timer.ModelTimer` on OpenVINO's CPU plugin, with fixed
    inputs ``feeds`` (their shapes are compiled in: the batch of the measurement)."""

    WARMUP = 3
    KEEP = 3
    """Compiled models kept for the next calls: placement times the same current model against
    one candidate after another, and compiling MobileNetV2 takes ~0.3 s, its timing less."""
    label = "OpenVINO"
    """Named in the placement's reasons and notes: these times hold on OpenVINO only."""

    def __init__(self, feeds: Mapping[str, np.ndarray], batch: int, threads: int) -> None:
        self.feeds = dict(feeds)
        self.batch = batch
        self.threads = threads
        self._kept: OrderedDict[bytes, tuple[Any, dict[str, str]]] = OrderedDict()

    def _compile(self, model: onnx.ModelProto, perf_count: bool) -> Any:
        shapes = {name: list(array.shape) for name, array in self.feeds.items()}
        return compile_openvino(model, threads=self.threads, shapes=shapes, perf_count=perf_count)

    def _profiled(self, model: onnx.ModelProto) -> tuple[Any, dict[str, str]]:
        """``model`` compiled with counters on, and each kernel's part (kept for later calls)."""
        key = hashlib.sha256(model.SerializeToString()).digest()
        if key not in self._kept:
            compiled = self._compile(model, perf_count=True)
            owner = read_runtime_graph(compiled, model, convert_prefix=CONVERT)[1]
            self._kept[key] = (compiled, owner)
            while len(self._kept) > self.KEEP:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        return self._kept[key]

    def release(self) -> None:
        """Free the compiled models kept (placement is done: they would hold memory for the
        rest of the calibration). A later call compiles again."""
        self._kept.clear()

    def parts(
        self, models: Sequence[onnx.ModelProto], runs: int, budget_s: float | None = None
    ) -> list[Parts]:
        profiled = [self._profiled(m) for m in models]
        owners = [owner for _, owner in profiled]
        requests = [compiled.create_infer_request() for compiled, _ in profiled]
        # Per model, per run: part → ms; turned into arrays once the number of runs is known.
        measured: list[list[dict[str, float]]] = [[] for _ in models]
        order = list(range(len(models)))
        start = time.perf_counter()
        for round_ in range(self.WARMUP + runs):
            done = round_ - self.WARMUP
            late = budget_s is not None and time.perf_counter() - start > budget_s
            if late and done >= MIN_RUNS:
                break
            offset = round_ % len(order)
            for index in order[offset:] + order[:offset]:
                requests[index].infer(self.feeds)
                if done >= 0:
                    measured[index].append(_kernel_times(requests[index], owners[index]))
        return [_as_arrays(runs_of_model) for runs_of_model in measured]

    def interleaved(self, models: Mapping[str, onnx.ModelProto], budget_s: float) -> Interleaved:
        turns = {}
        for name, model in models.items():
            request = self._compile(model, perf_count=False).create_infer_request()
            turns[name] = block_turn(
                lambda r=request: r.infer(self.feeds),  # type: ignore[misc]
                block=5,
                discard=1,
            )
        return interleaved(turns, min_rounds=7, max_rounds=400, budget_s=budget_s, warmup=2)


def _kernel_times(request: Any, owner: Mapping[str, str]) -> dict[str, float]:
    """The last run's kernel times of ``request``, summed per part."""
    times: dict[str, float] = {}
    for info in request.get_profiling_info():
        if info.status.name != "EXECUTED":
            continue
        part = owner.get(info.node_name, OTHER)
        times[part] = times.get(part, 0.0) + info.real_time.total_seconds() * 1000
    return times


def _as_arrays(runs: list[dict[str, float]]) -> Parts:
    """Per part, its time in each run (0 in a run where it did not execute)."""
    parts: Parts = {}
    for index, times in enumerate(runs):
        for part, ms in times.items():
            parts.setdefault(part, np.zeros(len(runs)))[index] = ms
    return parts
