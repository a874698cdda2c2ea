"""The figures a project shows, each with how it was measured: its speed (batch × streams,
runtime, CPU, when, and what it was timed with), an INT8 project's speed-up against its parent
from their side-by-side timing, what its calibration was (method, preset, placement, subset,
dataset), and its layer counts.

One rule runs through it: a speed-up is only ever the ratio of two figures timed together (in
alternating windows, in one run). Two throughputs measured alone, at different times, are never
divided: the list, the project page and Compare all read the same comparison, so they agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calibench.report.comparison import drop_words, speed_words
from calibench.report.layer_counts import count_layers, plural, revert_words
from calibench.runtime.isa import Isa
from calibench.server.web.schemas import View
from calibench.targets.check import verdict
from calibench.workflow.measured import isa_words

METHODS = {"default": "Default", "accuracy-aware": "AccuracyAware"}


class Speed(View):
    """Throughput and latency as one measurement made them, and how."""

    throughput: float
    latency_ms: float
    latency_ms_p90: float | None
    batch: int
    streams: int
    threads: int | None
    runtime: str | None
    cpu: str | None
    isa: str | None
    """The CPU's INT8 instructions in words (``VNNI``, ``AVX2 without VNNI``)."""
    at: str | None
    """ISO 8601, UTC."""
    when: str | None
    """``30 Nov 2026, 13:40 UTC``."""
    timed_with: list[str]
    """The models timed in the same windows (empty: alone)."""
    settings: str
    """``batch 1 × 1 stream, 2 threads``."""
    machine: str
    """``ONNX Runtime 1.22.1 · AMD EPYC 7B13 (VNNI)``, or what is known of it."""
    note: str
    """All of it in one line, shown beside the figure."""
    short: str
    """``1 × 1 · ONNX Runtime 1.22.1 · VNNI · 30 Nov 2026, 13:40 UTC``: for a table cell."""
    warning: str | None = None
    """Where the CPU that measured has no fast INT8 instructions (no VNNI, no ARM dot
    product): what to expect of INT8 there."""


class Gain(View):
    """An INT8 project against its parent, timed side by side in its calibration job."""

    against_id: int
    against_name: str
    throughput: float | None
    """INT8 over FP32 samples/s (> 1: faster)."""
    latency: float | None
    """FP32 over INT8 median latency (> 1: faster)."""
    words: str
    """``1.21× faster`` (throughput), the format every page uses."""
    latency_words: str
    fp32: Speed
    int8: Speed
    drop: float | None
    """FP32 minus INT8 on the metric (points)."""
    drop_words: str | None
    metric: str | None


class Recipe(View):
    """What an INT8 project was calibrated with: its name says it, the list has a column each."""

    method: str
    """``Default`` or ``AccuracyAware, maximum drop 1 pt``."""
    preset: str
    placement: str | None
    """``placement measured (batch 1)``, ``placement by rule``; None for a project calibrated
    before placement was a choice."""
    subset: str
    """``50% (50 samples)``, ``300 samples``."""
    dataset: str
    dataset_id: int | None
    words: str
    """``Default, performance preset, placement by rule, 50% of fashion calibration``."""


class LayerSummary(View):
    words: str
    """``8 of 8 Conv/Gemm in INT8; 6 activations folded into them; 5 of 7 other layers in
    INT8``."""
    int8: int
    """Rows with an INT8 badge (folded activations included)."""
    total: int
    counts: dict[str, Any]
    reverted: str | None
    """AccuracyAware: the layers reverted, and those that fell back with them, in words."""


def when(at: str | None) -> str | None:
    """``2026-11-30T13:40:12+00:00`` → ``30 Nov 2026, 13:40 UTC``."""
    if not at:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at
    return moment.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def _slow_int8(isa: str | None) -> str | None:
    try:
        found = Isa(isa) if isa else None
    except ValueError:
        return None
    if found is None or found in (Isa.AMX, Isa.VNNI, Isa.ARM_DOT):
        return None
    return f"the CPU that measured it has {found.label}: {verdict(found).split(': ', 1)[-1]}"


def speed_of(
    perf: dict[str, Any] | None, names: dict[str, str] | None = None, own: str | None = None
) -> Speed | None:
    """A performance dict (an inference report's, or one side of a comparison's) as a
    :class:`Speed`; ``names`` turns the comparison's keys (``fp32``) into the projects' names,
    ``own`` is this figure's model (the others timed with it are named)."""
    if not perf or perf.get("throughput") is None:
        return None
    settings = perf.get("settings") or {}
    batch = int(perf.get("batch", settings.get("batch", 1)))
    streams = int(perf.get("streams", settings.get("streams", 1)))
    threads = settings.get("threads")
    measured = perf.get("measured") or {}
    isa = measured.get("isa_label") or (isa_words(measured["isa"]) if "isa" in measured else None)
    timed_with = [(names or {}).get(n, n) for n in measured.get("timed_with") or []]
    setting = f"batch {batch} × {plural(streams, 'stream')}" + (
        f", {plural(int(threads), 'thread')} each" if threads else ""
    )
    runtime, cpu = measured.get("runtime"), measured.get("cpu")
    machine = " · ".join(p for p in (runtime, f"{cpu} ({isa})" if cpu and isa else cpu or isa) if p)
    shown = when(measured.get("at"))
    others = [n for n in timed_with if n != own]
    how = "timed side by side with " + ", ".join(others) if others else "timed alone"
    note = " · ".join(
        [setting, machine or "runtime and CPU not recorded", shown or "time not recorded", how]
    )
    return Speed(
        throughput=float(perf["throughput"]),
        latency_ms=float(perf["latency_ms_median"]),
        latency_ms_p90=perf.get("latency_ms_p90"),
        batch=batch,
        streams=streams,
        threads=threads,
        runtime=runtime,
        cpu=cpu,
        isa=isa,
        at=measured.get("at"),
        when=shown,
        timed_with=timed_with,
        settings=setting,
        machine=machine,
        note=note,
        warning=_slow_int8(measured.get("isa")),
        short=" · ".join(
            p for p in (f"{batch} × {streams}", runtime, isa, shown or "time not recorded") if p
        ),
    )


def gain_of(
    comparison: dict[str, Any] | None, against_id: int, against_name: str, own_name: str
) -> Gain | None:
    """An INT8 project's speed-up and drop against its parent, from the comparison its job
    measured (None until there is one)."""
    perf = (comparison or {}).get("performance")
    if not perf:
        return None
    names = {"fp32": against_name, "int8": own_name}
    fp32 = speed_of(perf.get("fp32"), names, against_name)
    int8 = speed_of(perf.get("int8"), names, own_name)
    if fp32 is None or int8 is None:
        return None
    throughput = int8.throughput / fp32.throughput if fp32.throughput else None
    latency = fp32.latency_ms / int8.latency_ms if int8.latency_ms else None
    accuracy = (comparison or {}).get("accuracy") or {}
    metric = accuracy.get("metric")
    drop = (accuracy.get("drop") or {}).get(metric) if metric else None
    return Gain(
        against_id=against_id,
        against_name=against_name,
        throughput=throughput,
        latency=latency,
        words=speed_words(throughput),
        latency_words=speed_words(latency),
        fp32=fp32,
        int8=int8,
        drop=drop,
        drop_words=drop_words(drop) if drop is not None else None,
        metric=metric,
    )


def method_words(config: dict[str, Any], short: bool = False) -> str:
    """``Default``; ``AccuracyAware, maximum drop 1 pt`` (``short``: ``AccuracyAware max drop 1
    pt``, for a name)."""
    method = METHODS.get(config.get("method", ""), str(config.get("method")))
    if config.get("method") == "accuracy-aware" and config.get("max_drop") is not None:
        relative = config.get("drop_type") == "relative"
        unit = ("%" if short else "% of FP32") if relative else " pt"
        method += f"{' max' if short else ', maximum'} drop {config['max_drop']:g}{unit}"
    return method


def placement_words(config: dict[str, Any]) -> str | None:
    """``placement measured (batch 8)``: timed at that batch where the calibration ran;
    ``placement by rule``: untimed. None where the settings predate the choice."""
    placement = config.get("placement")
    if placement is None:
        return None
    if placement == "rule":
        return "placement by rule"
    threads = config.get("placement_threads")
    setting = f"batch {int(config.get('placement_batch') or 1)}" + (
        f", {plural(int(threads), 'thread')}" if threads else ""
    )
    return f"placement {placement} ({setting})"


def recipe_of(calibration: dict[str, Any] | None) -> Recipe | None:
    """What an INT8 project was calibrated with, from its ``calibration`` column."""
    config = (calibration or {}).get("config")
    if not config:
        return None
    method = method_words(config)
    subset = config.get("subset") or {}
    report = (calibration or {}).get("report") or {}
    used = (report.get("subset") or {}).get("size")
    if subset.get("percent") is not None:
        size = f"{subset['percent']:g}%" + (f" ({plural(int(used), 'sample')})" if used else "")
    else:
        size = plural(int(subset.get("count") or used or 0), "sample")
    dataset = (calibration or {}).get("dataset") or {}
    name = str(dataset.get("name") or "?")
    preset = str(config.get("preset") or "performance")
    placement = placement_words(config)
    return Recipe(
        method=method,
        preset=preset,
        placement=placement,
        subset=size,
        dataset=name,
        dataset_id=dataset.get("id"),
        words=f"{method}, {preset} preset, "
        + (f"{placement}, " if placement else "")
        + f"{size.split(' (')[0]} of {name}",
    )


def layer_summary(
    rows: list[dict[str, Any]] | None, reverted: list[str] | None = None
) -> LayerSummary | None:
    """The counts of a layer table, and for an AccuracyAware model what its reverts took along."""
    if not rows:
        return None
    counts = count_layers(rows)
    return LayerSummary(
        words=counts.words(),
        int8=counts.int8,
        total=counts.total,
        counts=counts.to_dict(),
        reverted=revert_words(rows, reverted) if reverted is not None else None,
    )


def int8_name(model: str, config: dict[str, Any], dataset: str) -> str:
    """An INT8 model named by what it is: ``Fashion CNN INT8 (Default, performance, 50% of
    fashion calibration)``, with ``by rule`` after the preset where placement was not measured;
    two calibrations alike differ by a number the caller adds."""
    method = method_words(config, short=True)
    subset = config.get("subset") or {}
    size = (
        f"{subset['percent']:g}%"
        if subset.get("percent") is not None
        else plural(int(subset.get("count") or 0), "sample")
    )
    shown = dataset if len(dataset) <= 60 else dataset[:59] + "…"
    rule = ", by rule" if config.get("placement") == "rule" else ""
    return (
        f"{model[:100]} INT8 ({method}, {config.get('preset', 'performance')}{rule}, {size} of "
        f"{shown})"
    )
