"""What a comparison of an INT8 model with its FP32 parent holds, and the figures derived from
it: accuracy drop, speed-ups, the slowest layers and those with the worst error.

Measured by :mod:`calibench.workflow.compare`; shown by :mod:`calibench.report.compare` (console)
and :mod:`calibench.report.html`. Layers are matched by name: calibench keeps the FP32 node names
on the INT8 model's layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from calibench.report.layer_counts import count_layers
from calibench.report.layer_error import finite_or_none
from calibench.runtime.profiling import BUCKETS, LayerTimes

TOP_LAYERS = 15
SAME_SPEED = 0.005
"""Ratios within half a percent of 1 read as the same speed: the timing's own noise is larger."""


def speed_words(ratio: float | None) -> str:
    """A speed ratio (new over old: > 1 is faster) in the one format every page and report
    uses: ``1.21× faster``, ``1.05× slower`` (never ``0.95× faster``), ``same speed``."""
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return "not measured"
    if abs(ratio - 1) < SAME_SPEED:
        return "same speed"
    if ratio > 1:
        return f"{ratio:.2f}× faster"
    return f"{1 / ratio:.2f}× slower"


def drop_words(drop: float | None, unit: str = "pt") -> str:
    """An accuracy drop (old minus new) in the one format: ``drop 2.90 pt``, ``gain 0.40 pt``,
    ``no drop``."""
    if drop is None or not math.isfinite(drop):
        return "not measured"
    if round(drop, 2) == 0:
        return "no drop"
    return f"{'drop' if drop > 0 else 'gain'} {abs(drop):.2f} {unit}"


@dataclass
class LayerComparison:
    name: str
    op_type: str
    precision: str
    """How ONNX Runtime runs the layer in the INT8 model: INT8 or FP32."""
    kernel: str
    """ORT's kernel in the INT8 model, ``(fused)``/``(folded)`` when it has none of its own."""
    fp32_ms: float | None
    """None: the layer has no kernel of its own there (fused into a neighbour)."""
    int8_ms: float | None
    sqnr_db: float | None
    """SQNR of the layer's output against FP32 (cumulative); None for a layer not quantized."""

    @property
    def speedup(self) -> float | None:
        if self.fp32_ms is None or self.int8_ms is None or self.int8_ms <= 0:
            return None
        return self.fp32_ms / self.int8_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op_type": self.op_type,
            "precision": self.precision,
            "kernel": self.kernel,
            "fp32_ms": _round(self.fp32_ms),
            "int8_ms": _round(self.int8_ms),
            "speedup": _round(self.speedup, 3),
            "sqnr_db": finite_or_none(self.sqnr_db),
        }


@dataclass
class Comparison:
    fp32_model: str
    int8_model: str
    layers: list[LayerComparison]
    fp32_time: LayerTimes
    int8_time: LayerTimes
    sizes: dict[str, int]
    """Bytes on disk, external data included: {"fp32": n, "int8": n}."""
    output_sqnr: dict[str, float]
    error_samples: int
    accuracy: dict[str, Any] | None = None
    perf: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    runtime: str = "onnxruntime"
    """The runtime both models were timed and profiled on (``runtime.backend.Runtime``)."""
    profile_measured_on: dict[str, Any] | None = None
    """The conditions of the per-layer profile (``runtime.conditions.MeasuredOn.to_dict``)."""

    @property
    def measured_on(self) -> dict[str, Any] | None:
        """The conditions of the latency and throughput figures: the INT8 model's timing."""
        found = (self.perf or {}).get("int8", {}).get("measured_on")
        return found if isinstance(found, dict) else None

    @property
    def int8_warning(self) -> str | None:
        """Why INT8 cannot be fast on the CPU these figures come from (None: it can)."""
        for conditions in (self.measured_on, self.profile_measured_on):
            if conditions and conditions.get("warning"):
                return str(conditions["warning"])
        return None

    @property
    def int8_layers(self) -> int:
        return sum(1 for r in self.layers if r.precision == "INT8" and r.kernel != "(folded)")

    @property
    def title(self) -> str:
        """``mobilenet INT8 (…) against mobilenet (FP32)``: the INT8 model first, FP32 second,
        each said to be what it is (unless its name says it)."""
        named = "int8" in self.int8_model.lower()  # "… INT8 (Default, …)", "model-int8.onnx"
        return f"{self.int8_model}{'' if named else ' (INT8)'} against {self.fp32_model} (FP32)"

    @property
    def metric(self) -> str | None:
        if not self.accuracy:
            return None
        metric = self.accuracy.get("metric")
        if metric:
            return str(metric)
        shared = [k for k in self.accuracy.get("fp32", {}) if k in self.accuracy.get("int8", {})]
        return shared[0] if shared else None

    @property
    def accuracy_drop(self) -> dict[str, float]:
        """FP32 minus INT8 for every figure both have (positive: INT8 is worse, for metrics
        where higher is better)."""
        if not self.accuracy:
            return {}
        fp32, int8 = self.accuracy.get("fp32", {}), self.accuracy.get("int8", {})
        return {
            k: float(fp32[k]) - float(int8[k])
            for k in fp32
            if k in int8 and _is_number(fp32[k]) and _is_number(int8[k])
        }

    @property
    def kernel_speedup(self) -> float | None:
        if self.int8_time.total_ms <= 0:
            return None
        return self.fp32_time.total_ms / self.int8_time.total_ms

    @property
    def latency_speedup(self) -> float | None:
        f = self.perf_figure("fp32", "latency_ms_median")
        i = self.perf_figure("int8", "latency_ms_median")
        return f / i if f is not None and i else None

    @property
    def throughput_gain(self) -> float | None:
        f, i = self.perf_figure("fp32", "throughput"), self.perf_figure("int8", "throughput")
        return i / f if i is not None and f else None

    def buckets(self) -> dict[str, dict[str, float | None]]:
        """Time not owned by a layer: ORT's layout changes, leftover conversions, the rest."""
        return {
            b: {"fp32": self.fp32_time.layers_ms.get(b), "int8": self.int8_time.layers_ms.get(b)}
            for b in BUCKETS
            if b in self.fp32_time.layers_ms or b in self.int8_time.layers_ms
        }

    def slowest(self, n: int = TOP_LAYERS) -> list[LayerComparison]:
        timed = [r for r in self.layers if r.fp32_ms is not None or r.int8_ms is not None]
        return sorted(timed, key=lambda r: -max(r.fp32_ms or 0.0, r.int8_ms or 0.0))[:n]

    def worst_sqnr(self, n: int = 10) -> list[LayerComparison]:
        measured = [r for r in self.layers if r.sqnr_db is not None]
        return sorted(measured, key=lambda r: r.sqnr_db if r.sqnr_db is not None else 0.0)[:n]

    def perf_figure(self, model: str, key: str) -> float | None:
        value = (self.perf or {}).get(model, {}).get(key)
        return float(value) if _is_number(value) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": {"fp32": self.fp32_model, "int8": self.int8_model},
            "runtime": self.runtime,
            "measured_on": self.measured_on,
            "int8_warning": self.int8_warning,
            "accuracy": None
            if not self.accuracy
            else {
                **self.accuracy,
                "metric": self.metric,
                "drop": {k: round(v, 6) for k, v in self.accuracy_drop.items()},
            },
            "performance": None
            if not self.perf
            else {
                **self.perf,
                "latency_speedup": _round(self.latency_speedup, 3),
                "throughput_gain": _round(self.throughput_gain, 3),
            },
            "size_bytes": self.sizes,
            "int8_layers": self.int8_layers,
            "layers_total": len(self.layers),
            "layer_counts": count_layers(r for r in self.layers if r.precision != "-").to_dict(),
            "profile": {
                "batch": self.fp32_time.batch,
                "threads": self.fp32_time.threads,
                "runs": self.fp32_time.runs,
                "fp32_total_ms": _round(self.fp32_time.total_ms),
                "int8_total_ms": _round(self.int8_time.total_ms),
                "fp32_run_ms": _round(self.fp32_time.run_ms),
                "int8_run_ms": _round(self.int8_time.run_ms),
                "kernel_speedup": _round(self.kernel_speedup, 3),
                "measured_on": self.profile_measured_on,
                "unassigned_ms": {
                    b: {k: _round(v) for k, v in t.items()} for b, t in self.buckets().items()
                },
            },
            "error": {
                "samples": self.error_samples,
                "outputs_sqnr_db": {k: finite_or_none(v) for k, v in self.output_sqnr.items()},
            },
            "layers": [r.to_dict() for r in self.layers],
            "notes": self.notes,
        }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
