"""An INT8 model beside its FP32 parent: accuracy, speed, size, and layer by layer where the time
goes and where the error comes from.

Accuracy and latency/throughput are measured elsewhere (over a whole dataset, at the user's
inference settings) and passed in; this module adds what needs both models side by side: per-layer
time from ORT's profiler (``runtime.profiling``), per-layer SQNR (``report.layer_error``), and the
runtime precision of each layer of the INT8 model (``report.layers``). Layers are matched by name:
calibench keeps the FP32 node names on the INT8 model's layers. The FP32 side is profiled as
calibench prepared it for quantization (BatchNormalization folded, as ORT folds it anyway), so
that both models name their layers alike.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from rich.console import Console
from rich.table import Table

from calibench.model.load import load_model
from calibench.passes.prepare import prepare_fp32
from calibench.report.layer_error import DEFAULT_SAMPLES, finite_or_none, layer_errors
from calibench.report.layers import layer_table
from calibench.runtime.profiling import BUCKETS, LayerTimes, profile_layers

PERF_KEYS = ("latency_ms_median", "latency_ms_p90", "latency_ms_p99", "throughput")
TOP_LAYERS = 15


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

    @property
    def int8_layers(self) -> int:
        return sum(1 for r in self.layers if r.precision == "INT8" and r.kernel != "(folded)")

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
            "profile": {
                "batch": self.fp32_time.batch,
                "threads": self.fp32_time.threads,
                "runs": self.fp32_time.runs,
                "fp32_total_ms": _round(self.fp32_time.total_ms),
                "int8_total_ms": _round(self.int8_time.total_ms),
                "fp32_run_ms": _round(self.fp32_time.run_ms),
                "int8_run_ms": _round(self.int8_time.run_ms),
                "kernel_speedup": _round(self.kernel_speedup, 3),
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

    def render(self, console: Console) -> None:
        console.print(self._summary_table())
        console.print(
            _layer_table(
                self.slowest(),
                f"Slowest layers (ONNX Runtime profiler, batch {self.fp32_time.batch}, "
                f"{self.fp32_time.threads} thread(s), mean of {self.fp32_time.runs} runs)",
            )
        )
        worst = self.worst_sqnr()
        if worst:
            console.print(
                _layer_table(
                    worst,
                    f"Worst layers by SQNR (INT8 vs FP32 output, {self.error_samples} samples)",
                )
            )
        for note in self.notes:
            console.print(f"Note: {note}")

    def __str__(self) -> str:
        console = Console(width=160, record=True, file=io.StringIO())
        self.render(console)
        return console.export_text()

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, FP32, INT8, change) as text: what the console and HTML summaries show."""
        rows: list[tuple[str, str, str, str]] = []
        if self.accuracy:
            drops = self.accuracy_drop
            fp32, int8 = self.accuracy.get("fp32", {}), self.accuracy.get("int8", {})
            for key in sorted(drops, key=lambda k: k != self.metric):
                rows.append(
                    (
                        f"accuracy: {key}",
                        f"{float(fp32[key]):.4g}",
                        f"{float(int8[key]):.4g}",
                        f"drop {drops[key]:+.4g}",
                    )
                )
        labels = {
            "latency_ms_median": "latency median (ms)",
            "latency_ms_p90": "latency p90 (ms)",
            "latency_ms_p99": "latency p99 (ms)",
            "throughput": "throughput (samples/s)",
        }
        for key in PERF_KEYS:
            f, i = self.perf_figure("fp32", key), self.perf_figure("int8", key)
            if f is None and i is None:
                continue
            ratio = ""
            if f and i:
                ratio = f"×{i / f:.2f}" if key == "throughput" else f"{f / i:.2f}× faster"
            rows.append((labels[key], _num(f), _num(i), ratio))
        if self.perf:
            settings = [
                f"{k} {self.perf.get('int8', {}).get(k)}"
                for k in ("batch", "streams")
                if self.perf.get("int8", {}).get(k) is not None
            ]
            if settings:
                rows.append(("inference settings", "", ", ".join(settings), ""))
        speedup = self.kernel_speedup
        rows.append(
            (
                "kernel time, profiled (ms)",
                f"{self.fp32_time.total_ms:.4g}",
                f"{self.int8_time.total_ms:.4g}",
                f"{speedup:.2f}× faster" if speedup else "",
            )
        )
        f_mb, i_mb = self.sizes["fp32"] / 1e6, self.sizes["int8"] / 1e6
        rows.append(("size on disk (MB)", f"{f_mb:.3g}", f"{i_mb:.3g}", f"{i_mb / f_mb:.0%}"))
        rows.append(("INT8 layers", "", f"{self.int8_layers} of {len(self.layers)}", ""))
        for name, value in self.output_sqnr.items():
            rows.append((f"output SQNR: {name} (dB)", "", _db(value), ""))
        return rows

    def _summary_table(self) -> Table:
        table = Table(title=f"{self.int8_model} against {self.fp32_model}")
        for column in ("measure", "FP32", "INT8", "change"):
            table.add_column(column, overflow="fold")
        for row in self.summary_rows():
            table.add_row(*row)
        return table


def compare_models(
    fp32_path: str | os.PathLike[str],
    int8_path: str | os.PathLike[str],
    samples: Sequence[Mapping[str, np.ndarray]],
    *,
    accuracy: dict[str, Any] | None = None,
    perf: dict[str, Any] | None = None,
    batch: int = 1,
    threads: int = 1,
    error_samples: int = DEFAULT_SAMPLES,
    profile_runs: int = 20,
    profile_warmup: int = 5,
) -> Comparison:
    """Compare ``int8_path`` with ``fp32_path``; ``samples`` are ``{input: array}`` dicts (the
    first feeds the profiler, the first ``error_samples`` the SQNR). ``accuracy`` is
    ``{"fp32": {...}, "int8": {...}, "metric": "top1"}`` and ``perf`` ``{"fp32": {...},
    "int8": {...}}`` with latency/throughput figures, both measured elsewhere."""
    if not samples:
        raise ValueError("compare_models needs at least one sample")
    fp32 = prepare_fp32(load_model(fp32_path))[0]
    int8 = load_model(int8_path)
    rows, _ = layer_table(int8)
    first = samples[0]
    timing = {"batch": batch, "threads": threads, "runs": profile_runs, "warmup": profile_warmup}
    fp32_time = profile_layers(fp32, first, **timing)
    int8_time = profile_layers(int8, first, **timing)
    errors = layer_errors(fp32, int8, samples, max_samples=error_samples, threads=threads)
    sqnr = {e.name: e.sqnr_db for e in errors.layers}

    layers = [
        LayerComparison(
            name=row.name,
            op_type=row.op_type,
            precision=row.precision,
            kernel=row.kernel,
            fp32_ms=fp32_time.layers_ms.get(row.name),
            int8_ms=int8_time.layers_ms.get(row.name),
            sqnr_db=sqnr.get(row.name),
        )
        for row in rows
    ]
    # Layers timed in the FP32 model that the INT8 model does not have under that name.
    known = {r.name for r in layers} | set(BUCKETS)
    op_types = {n.name: n.op_type for n in fp32.graph.node}
    for name, ms in fp32_time.layers_ms.items():
        if name not in known:
            layers.append(LayerComparison(name, op_types.get(name, "?"), "-", "-", ms, None, None))
    notes = []
    if errors.skipped:
        notes.append(
            f"no FP32 tensor to compare with for {len(errors.skipped)} quantized layer(s): "
            + ", ".join(errors.skipped[:5])
            + (" …" if len(errors.skipped) > 5 else "")
        )
    return Comparison(
        fp32_model=Path(fp32_path).name,
        int8_model=Path(int8_path).name,
        layers=layers,
        fp32_time=fp32_time,
        int8_time=int8_time,
        sizes={"fp32": size_on_disk(fp32_path), "int8": size_on_disk(int8_path)},
        output_sqnr=errors.outputs,
        error_samples=errors.samples,
        accuracy=accuracy,
        perf=perf,
        notes=notes,
    )


def size_on_disk(path: str | os.PathLike[str]) -> int:
    """The model file plus the external data files it names."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    locations = set()
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    extra = sum((path.parent / loc).stat().st_size for loc in locations)
    return path.stat().st_size + extra


def _layer_table(rows: list[LayerComparison], title: str) -> Table:
    table = Table(title=title)
    for column in ("layer", "type", "runtime", "FP32 ms", "INT8 ms", "speed-up", "SQNR dB"):
        table.add_column(column, overflow="fold", justify="left" if column == "layer" else "right")
    for row in rows:
        speedup = row.speedup
        table.add_row(
            row.name,
            row.op_type,
            row.precision,
            _ms(row.fp32_ms),
            _ms(row.int8_ms),
            f"{speedup:.2f}×" if speedup else "—",
            _db(row.sqnr_db),
        )
    return table


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _db(value: float | None) -> str:
    if value is None:
        return "—"
    return "identical" if math.isinf(value) and value > 0 else f"{value:.1f}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
