"""``calibench sensitivity``: which INT8 layers cost the accuracy, and what keeping each in FP32
would cost in time."""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path
from typing import Any

from calibench.cli.common import (
    add_metric_option,
    add_preprocess_options,
    positive_int,
    preprocess_options,
    progress_bars,
    wide_console,
)
from calibench.config import CalibrationConfig, Preset, Subset
from calibench.errors import ConfigError
from calibench.runtime.isa import ISA_CHOICES
from calibench.runtime.memory import parse_size


def register(sub: Any) -> None:
    sens = sub.add_parser(
        "sensitivity",
        help="rank INT8 layers by what reverting each alone to FP32 gives back",
    )
    sens.add_argument("model", type=Path, help="the FP32 .onnx model")
    sens.add_argument("--dataset", "-d", required=True, help="calibration data")
    sens.add_argument(
        "--validation-dataset",
        help="data the layers are scored on (default --dataset); annotated data is scored by "
        "its metric, other data by the output SQNR against FP32",
    )
    sens.add_argument("--validation-subset", help="10%% or a count (default: 64 samples)")
    add_metric_option(sens)
    sens.add_argument("--subset", default="100%", help="calibration subset (default 100%%)")
    sens.add_argument(
        "--preset", choices=[p.value for p in Preset], default=Preset.PERFORMANCE.value
    )
    sens.add_argument(
        "--isa",
        default="auto",
        choices=ISA_CHOICES,
        help="the ISA class the model will run on (default: this CPU)",
    )
    sens.add_argument("--keep-fp32", action="append", default=[], metavar="PATTERN")
    sens.add_argument("--memory-limit", metavar="SIZE", help="e.g. 4G (default: a quarter of RAM)")
    sens.add_argument("--batch-size", type=positive_int, default=8)
    sens.add_argument("--threads", type=positive_int)
    sens.add_argument("--workspace", type=Path)
    sens.add_argument(
        "--top", type=positive_int, default=25, help="rows shown in the table (default 25)"
    )
    sens.add_argument("--json", action="store_true", help="print the ranking as JSON")
    sens.add_argument("--html", type=Path, help="write the ranking with a chart to this file")
    sens.add_argument("--quiet", "-q", action="store_true")
    add_preprocess_options(sens)
    sens.set_defaults(run=sensitivity_command)


def sensitivity_command(args: argparse.Namespace) -> int:
    from calibench.api import _metric_for
    from calibench.calibration.sensitivity import run_sensitivity
    from calibench.cli.datasets import resolve_dataset
    from calibench.data.annotations import is_annotated
    from calibench.data.open import open_for_model
    from calibench.metrics.registry import default_spec
    from calibench.model.eligibility import check_eligible
    from calibench.model.load import load_model
    from calibench.runtime.inputs import input_specs

    config = CalibrationConfig(
        preset=args.preset,
        subset=Subset.parse(args.subset),
        batch_size=args.batch_size,
        validation_subset=Subset.parse(args.validation_subset) if args.validation_subset else None,
        isa=args.isa,
        keep_fp32=tuple(args.keep_fp32),
        memory_limit=parse_size(args.memory_limit) if args.memory_limit else None,
    )
    model = load_model(args.model)
    check_eligible(model, args.model.name)
    specs = input_specs(model)
    preprocess = preprocess_options(args)
    calibration, _ = open_for_model(
        resolve_dataset(args.dataset, args.workspace), specs, preprocess, args.model.name
    )
    validation = calibration
    if args.validation_dataset:
        validation, _ = open_for_model(
            resolve_dataset(args.validation_dataset, args.workspace),
            specs,
            preprocess,
            args.model.name,
        )
    annotated = is_annotated(validation)
    if args.metric and not annotated:
        raise ConfigError(
            f"--metric {args.metric} needs annotated validation data; without annotations the "
            "layers are scored by the output SQNR against FP32 (leave out --metric)"
        )
    if annotated and not args.metric:  # labels only a custom metric scores: SQNR instead
        annotated = default_spec(validation.task, validation.classes) is not None  # type: ignore[attr-defined]
    metric = _metric_for(validation, args.metric) if annotated else None
    with progress_bars(args.quiet) as on_progress:
        report = run_sensitivity(
            model,
            args.model.name,
            calibration,
            validation,
            metric,
            config,
            progress=on_progress,
            threads=args.threads,
        )
    data = report.to_dict()
    if args.html:
        args.html.write_text(render_html(data))
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    _render(data, args.top)
    if args.html:
        print(f"HTML report written to {args.html}")
    return 0


def _render(data: dict[str, Any], top: int) -> None:
    from rich.table import Table

    console = wide_console()
    unit = "points" if data["fp32"] is not None else "dB"
    table = Table(title=f"Sensitivity of {data['model']}: {data['measure']}, layers reverted alone")
    columns = (
        "rank",
        "layer",
        "type",
        f"gain ({unit})",
        "FP32 ms",
        "INT8 ms",
        "u8s8 would saturate",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for rank, layer in enumerate(data["layers"][:top], start=1):
        table.add_row(
            str(rank),
            layer["layer"],
            layer["op_type"],
            _gain(layer["gain"]),
            _ms(layer["fp32_ms"]),
            _ms(layer["int8_ms"]),
            _saturation(layer),
        )
    console.print(table)
    fp32 = "" if data["fp32"] is None else f"FP32 {data['fp32']:.3f}, "
    console.print(
        f"{fp32}Default INT8 {data['int8']:.3f} on {data['samples']} samples; calibrated for "
        f"{data['isa']}; {len(data['layers'])} layers measured in {data['seconds']:.1f} s. "
        "Keep the top ones in FP32 with --keep-fp32 NAME, or let --method accuracy-aware choose."
    )


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _gain(value: float | None) -> str:
    return "∞ (identical to FP32)" if value is None else f"{value:+.3f}"


def _saturation(layer: dict[str, Any]) -> str:
    """The u8×s8 kernel's error, and the scheme that replaced it."""
    if layer["saturation_sqnr_db"] is None:
        return f"no ({layer['scheme']})" if layer.get("scheme") else ""
    return f"{layer['saturation_sqnr_db']:.1f} dB → {layer['scheme']}"


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page: a bar per layer (gain) with its FP32 time, then the table."""
    layers = data["layers"]
    unit = "points" if data["fp32"] is not None else "dB"
    label_w, bar_w, row_h, top = 380, 560, 16, 10
    width, height = label_w + bar_w + 200, top + row_h * len(layers) + 10
    largest = max([abs(g["gain"]) for g in layers if g["gain"] is not None], default=1.0) or 1.0
    bars = []
    for i, layer in enumerate(layers):
        y = top + i * row_h
        gain = layer["gain"] if layer["gain"] is not None else largest
        w = max(1.0, bar_w * max(gain, 0.0) / largest)
        colour = "#c0392b" if layer["saturation_sqnr_db"] is not None else "#5b7db1"
        name = escape(layer["layer"])
        bars.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{name}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" '
            f'fill="{colour}"><title>{name}: {_gain(layer["gain"])} {unit}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="10">'
            f"{_gain(layer['gain'])} {unit} · FP32 {_ms(layer['fp32_ms'])} ms</text>"
        )
    rows = "".join(
        f"<tr><td>{i}</td><td class=l>{escape(layer['layer'])}</td><td>{escape(layer['op_type'])}"
        f"</td><td>{escape(_gain(layer['gain']))}</td><td>{_ms(layer['fp32_ms'])}</td>"
        f"<td>{_ms(layer['int8_ms'])}</td><td>{escape(_saturation(layer))}</td></tr>"
        for i, layer in enumerate(layers, start=1)
    )
    title = escape(f"Sensitivity of {data['model']}")
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{title}</title><style>body{{font-family:system-ui,sans-serif;margin:24px}}"
        "td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}"
        ".l{text-align:left;font-family:monospace}svg text{font-family:monospace}</style>"
        f"</head><body><h1>{title}</h1><p>{escape(data['measure'])} gained by reverting each "
        f"INT8 layer alone to FP32, on {data['samples']} samples (calibrated for "
        f"{escape(data['isa'])}). Red: ORT's u8×s8 kernel would saturate in the layer on that "
        "ISA (the last column names the scheme that replaced it).</p>"
        f'<svg role="img" aria-label="gain per layer" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{"".join(bars)}</svg>'
        f"<table><tr><th>rank</th><th class=l>layer</th><th>type</th><th>gain ({unit})</th>"
        f"<th>FP32 ms</th><th>INT8 ms</th><th>u8s8 would saturate</th></tr>{rows}</table>"
        "</body></html>"
    )
