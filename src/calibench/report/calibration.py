"""The calibration report: what was quantized, how it runs, and what it cost to make."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from calibench.report.layer_counts import count_layers, fell_back, revert_words
from calibench.report.layers import LayerRow


@dataclass
class CalibrationReport:
    model: str
    config: dict[str, Any]
    dataset: dict[str, Any]
    subset_size: int
    dataset_size: int
    skipped: list[int]
    stage_seconds: dict[str, float]
    layers: list[LayerRow]
    kernels: dict[str, dict[str, int]]
    """ORT's optimised graph, kernels counted by precision."""
    notes: list[str] = field(default_factory=list)
    preprocess: dict[str, Any] | None = None
    """The image preprocessing calibration used (None for tensor data)."""
    accuracy_aware: dict[str, Any] | None = None
    """The AccuracyAware method's figures, iterations and reverted layers."""
    isa: dict[str, Any] | None = None
    """The ISA class the model is made for, and this machine's CPU."""
    kernel_check: dict[str, Any] | None = None
    """Integer kernels against the exact arithmetic (``calibration.kernel_check``)."""
    memory: dict[str, Any] | None = None
    """The memory limit the passes were sized for and each stage's peak, in MB."""
    overflow: list[dict[str, Any]] = field(default_factory=list)
    """Per Conv/Gemm/MatMul on a saturating ISA: the saturation measured, the candidates."""

    @property
    def int8_layers(self) -> int:
        return sum(1 for row in self.layers if row.precision == "INT8" and row.kernel != "(folded)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config,
            "dataset": self.dataset,
            "subset": {
                "size": self.subset_size,
                "of": self.dataset_size,
                "unreadable_skipped": len(self.skipped),
            },
            "seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "int8_layers": self.int8_layers,
            "layers": [row.to_dict() for row in self.layers],
            "kernels": self.kernels,
            "notes": self.notes,
            "preprocess": self.preprocess,
            "accuracy_aware": self.accuracy_aware,
            "isa": self.isa,
            "kernel_check": self.kernel_check,
            "overflow": self.overflow,
            "memory": self.memory,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def render(self, console: Console) -> None:
        console.print(layers_table(self.layers, title=f"Layers of the INT8 model of {self.model}"))
        counts = self.kernels.get("INT8", {})
        runtime = "OpenVINO" if self.config.get("runtime") == "openvino" else "ONNX Runtime"
        console.print(
            f"{runtime} runs {count_layers(self.layers).words()} "
            f"({', '.join(f'{n} {k}' for k, n in counts.items()) or 'none'}); "
            f"{sum(self.kernels.get('FP32', {}).values())} float kernels, "
            f"{sum(self.kernels.get('CONVERT', {}).values())} conversions remain."
        )
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in self.stage_seconds.items())
        if self.memory and self.memory.get("peak_mb"):
            peaks = ", ".join(f"{k} {v:.0f}" for k, v in self.memory["peak_mb"].items())
            stages += f". Peak memory (MB; limit {self.memory['limit_mb']:.0f}): {peaks}"
        console.print(
            f"Subset: {self.subset_size} of {self.dataset_size} samples"
            + (f" ({len(self.skipped)} unreadable, skipped)" if self.skipped else "")
            + f". Time: {stages}."
        )
        if self.isa:
            where = (
                f"this CPU: {self.isa['host']}"
                if self.isa["detected"]
                else f"given with --isa; this CPU: {self.isa['host']}"
            )
            console.print(f"Calibrated for: {self.isa['label']} ({where}).")
        for note in self.notes:
            console.print(f"Note: {note}")
        if self.kernel_check:
            check = self.kernel_check
            for warning in check["warnings"]:
                console.print(f"[bold red]Warning:[/] {warning}")
            if check["ok"] and check["integer_vs_exact_sqnr_db"] is not None:
                console.print(
                    f"Kernel check: integer kernels match the exact INT8 arithmetic on this CPU "
                    f"(output SQNR {check['integer_vs_exact_sqnr_db']:.1f} dB on "
                    f"{check['samples']} calibration samples)."
                )
        if self.accuracy_aware:
            render_accuracy_aware(self.accuracy_aware, console)
            reverted = list(self.accuracy_aware.get("reverted") or ())
            if fell_back(self.layers, reverted):  # why the INT8 count fell by more
                console.print(revert_words(self.layers, reverted) + ".")

    def __str__(self) -> str:
        console = Console(width=160, record=True, file=io.StringIO())
        self.render(console)
        return console.export_text()


def render_accuracy_aware(data: dict[str, Any], console: Console) -> None:
    table = Table(title=f"AccuracyAware: {data['metric']}, maximum drop {data['allowed_drop']:.3g}")
    for column in ("step", "layers in FP32", "accuracy", "drop", "full evaluations"):
        table.add_column(column)
    for step in data["iterations"]:
        table.add_row(
            step["step"],
            str(len(step["reverted"])),
            f"{step['accuracy']:.3f}",
            f"{step['drop']:.3f}",
            str(step["evaluations"]),
        )
    console.print(table)
    verdict = "met" if data["met"] else "NOT met: the best model found is kept"
    console.print(
        f"FP32 {data['fp32']:.3f}, Default method {data['default']:.3f}, final "
        f"{data['final']:.3f} (drop {data['drop']:.3f}, allowed {data['allowed_drop']:.3f}): "
        f"target {verdict}. Layers reverted to FP32: {len(data['reverted'])}; "
        f"{data['evaluations']['full']} full evaluations, {data['evaluations']['ranking']} on the "
        f"ranking subset; {data['seconds']:.1f} s."
    )
    if data.get("speedup_vs_fp32") is not None:
        console.print(f"The model returned runs {data['speedup_vs_fp32']:.2f}× FP32's speed here.")
    if data.get("verdict"):
        console.print(f"[bold red]{data['verdict']}[/]")


def layers_table(rows: list[LayerRow], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for column in (
        "layer",
        "type",
        "runtime",
        "kernel",
        "in",
        "out",
        "in scale / zp",
        "out scale / zp",
        "why FP32 / INT8 scheme",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.name,
            row.op_type,
            row.precision,
            row.kernel,
            row.input_precision,
            row.output_precision,
            _qp(row.input_scale, row.input_zero_point),
            _qp(row.output_scale, row.output_zero_point),
            row.reason if row.precision != "INT8" else _scheme(row),
        )
    return table


def _scheme(row: LayerRow) -> str:
    if not row.scheme:
        return ""
    return f"{row.scheme}: {row.scheme_note}" if row.scheme_note else row.scheme


def _qp(scale: float | None, zero_point: int | None) -> str:
    return "" if scale is None else f"{scale:.4g} / {zero_point}"
