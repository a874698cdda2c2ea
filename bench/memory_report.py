"""``MEMORY.md`` from the runs of :mod:`bench.memory`."""

from __future__ import annotations

from typing import Any

# --- report ----------------------------------------------------------------------------------

LABELS = {
    "calibench-default": "calibench, default budget",
    "calibench-2G": "calibench `--memory-limit 2G`",
    "calibench-1G": "calibench `--memory-limit 1G`",
    "ort": "ORT `quantize_static` (after `quant_pre_process`)",
}


def _fmt(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _stages(run: dict[str, Any], key: str, digits: int) -> str:
    values = run.get(key) or {}
    return ", ".join(f"{k} {v:,.{digits}f}" for k, v in values.items()) or "–"


def _split(run: dict[str, Any]) -> str:
    sampled = run.get("sampled_peak_mb") or {}
    if "RssAnon" not in sampled:
        return "–"
    return f"{_fmt(sampled['RssAnon'])} / {_fmt(sampled.get('RssFile'))}"


def summary(runs: list[dict[str, Any]]) -> str:
    """A plain paragraph of what the table shows, from the numbers only."""
    by = {r["run"]: r for r in runs}
    sentences: list[str] = []
    ok = [r for r in runs if "error" not in r]
    for r in runs:
        if "error" in r:
            sentences.append(f"{LABELS[r['run']]} failed ({r['error']}).")
    cal = [r for r in ok if r["run"].startswith("calibench")]
    for r in cal:
        limit = r.get("limit_mb")
        within = "within" if limit and r["peak_rss_mb"] <= limit else "above"
        stage_max = max((r.get("stage_peak_mb") or {}).values(), default=None)
        sentences.append(
            f"{LABELS[r['run']]} (limit {_fmt(limit)} MB) peaked at {_fmt(r['peak_rss_mb'])} MB "
            f"RSS, {within} its limit (largest per-stage peak in its report: "
            f"{_fmt(stage_max)} MB), in {_fmt(r['wall_s'])} s."
        )
        sampled = r.get("sampled_peak_mb") or {}
        if "RssAnon" in sampled:
            anon_within = "within" if limit and sampled["RssAnon"] <= limit else "above"
            sentences.append(
                f"Of that, anonymous memory peaked at {_fmt(sampled['RssAnon'])} MB "
                f"({anon_within} the limit) and file-backed pages at "
                f"{_fmt(sampled.get('RssFile'))} MB."
            )
    ort = by.get("ort")
    if ort and "error" not in ort:
        sampled = ort.get("sampled_peak_mb") or {}
        split = (
            f" (anonymous {_fmt(sampled['RssAnon'])} MB, file-backed "
            f"{_fmt(sampled.get('RssFile'))} MB)"
            if "RssAnon" in sampled
            else ""
        )
        sentences.append(
            f"ORT quantize_static peaked at {_fmt(ort['peak_rss_mb'])} MB{split} in "
            f"{_fmt(ort['wall_s'])} s."
        )
        for r in cal:
            sentences.append(
                f"{LABELS[r['run']]}: {r['peak_rss_mb'] / ort['peak_rss_mb']:.2f}× ORT's peak, "
                f"{r['wall_s'] / ort['wall_s']:.2f}× its wall time."
            )
    return " ".join(sentences)


def render_markdown(doc: dict[str, Any], size: int, seed: int) -> str:
    """MEMORY.md for ``doc`` (the runs of :mod:`bench.memory`), crops of ``size`` from ``seed``."""
    m = doc["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["int8_flags"].items())
    model = doc["model"]
    lines = [
        "# Calibration memory: PP-OCRv4 text detector, 640×640",
        "",
        f"Date {doc['date']}. Written by `python -m bench.memory --samples {doc['samples']}` "
        '(issue 10, item "calibration memory"); raw figures in `bench/memory.json`.',
        "",
        f"- Machine: {m['cpu']}; INT8 flags: {flags}; {m['cores']} cores; "
        f"{m['memory_total_mb']:,} MB memory.",
        f"- Model: `{model['file']}` from {model['source']}; input `{model['input']}` "
        f"{model['input_shape']}, opset {model['opset']}, {model['nodes']} nodes, "
        f"{model['size_mb']} MB.",
        f"- Calibration data: {doc['samples']} natural-photo crops {size}×{size} "
        f"(`zoo.photos.natural_crops`, seed {seed}), normalised like RapidOCR 1.4.4's detector "
        "(`(x/255 − 0.5)/0.5` per channel, not ImageNet mean/std), float32 NCHW, "
        f"{doc['data_mb']:,.0f} MB as `.npz` (key `x`). Every run uses all of it.",
        "- Each run is a fresh process started by a small `python -c` wrapper; peak RSS is the "
        "wrapper's `getrusage(RUSAGE_CHILDREN).ru_maxrss`, wall time the wrapper's (includes "
        "interpreter start-up and imports). The wrapper also samples the child's "
        "`/proc/PID/status` every 20 ms: `RssAnon` (heap, arenas, tensors) and `RssFile` "
        "(file-backed pages: libraries, and calibench's memory-mapped `.npz`, which the kernel "
        "can drop under pressure) peak at different moments, so they need not add up. "
        "ORT runs the settings of `bench.peers._ort_static` "
        "(QDQ, per-channel, MinMax, QUInt8 activations, QInt8 weights, reader batch 8, whole "
        "`.npz` loaded) after `quant_pre_process`; when that fails it is retried with "
        "`skip_symbolic_shape=True`, then skipped (see the notes under the table).",
        f"- Other processes were running on this machine: load average (1 min) "
        f"{doc['load_start'][0]:.2f} at the start, {doc['load_end'][0]:.2f} at the end "
        "(per run below). Times are indicative only.",
        "",
        "| Run | Limit MB | Peak RSS MB | Anon / file-backed MB (sampled) | Wall s "
        "| Per-stage peak MB (report) | Per-stage s (report) | Load avg before → after |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for r in doc["runs"]:
        load = f"{r['load_before'][0]:.2f} → {r['load_after'][0]:.2f}" if "load_after" in r else "–"
        peak = _fmt(r.get("peak_rss_mb")) if "error" not in r else f"failed: {r['error']}"
        lines.append(
            f"| {LABELS[r['run']]} | {_fmt(r.get('limit_mb'))} | {peak} "
            f"| {_split(r)} | {_fmt(r.get('wall_s'))} | {_stages(r, 'stage_peak_mb', 0)} "
            f"| {_stages(r, 'stage_seconds', 1)} | {load} |"
        )
    notes = [a for r in doc["runs"] for a in r.get("ort_attempts", [])]
    if notes:
        lines += ["", "ORT pre-processing: " + "; ".join(f"`{a}`" for a in notes) + "."]
    lines += [
        "",
        summary(doc["runs"]),
        "",
        "For reference, issue 10 reported, before the memory budget and on its own machine: "
        "calibench 7.0 GB peak RSS and 198–233 s on this model with 300 pages; ORT "
        "quantize_static 1.8 GB in 68 s.",
        "",
    ]
    return "\n".join(lines)
