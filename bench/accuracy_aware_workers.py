"""One quantizer of :mod:`bench.accuracy_aware` alone in a fresh process: calibench (Default or
AccuracyAware) or ``nncf.quantize_with_accuracy_control``, with its wall time, peak memory and
the model evaluations it spent."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from bench._proc import (
    ROOT,
    bench_env,
    loadavg,
    reset_peak,
    status_mb,
)
from bench.accuracy_aware_cases import EPSILON_PTS, SUBSET, load_npz
from bench.machine import CpuMonitor

# --- workers: one quantizer in a fresh process ------------------------------------------------


def _worker_calibench(spec: dict[str, Any], accuracy_aware: bool) -> dict[str, Any]:
    import calibench

    model = onnx.load(spec["model"])
    baseline = status_mb("VmRSS")
    reset = reset_peak()
    start = time.perf_counter()
    if accuracy_aware:
        result = calibench.calibrate(
            model,
            spec["calibration"],
            method="accuracy-aware",
            max_drop=spec["max_drop"] + EPSILON_PTS,
            validation=spec["dataset"],
            subset=SUBSET,
        )
    else:
        result = calibench.calibrate(model, spec["calibration"], subset=SUBSET)
    result.save(spec["out"])
    seconds = time.perf_counter() - start
    report = result.report.to_dict()
    return {
        "seconds": seconds,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": status_mb("VmHWM"),
        "peak_reset": reset,
        "accuracy_aware": report.get("accuracy_aware"),
        "kernels": report.get("kernels"),
        "stage_seconds": report.get("seconds"),
    }


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _worker_nncf(spec: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("NNCF_CI", "1")
    import nncf
    import onnxruntime as ort
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    recorder = _Recorder()
    logging.getLogger("nncf").addHandler(recorder)
    model = onnx.load(spec["model"])
    batch = int(spec["eval_batch"])
    threads = os.cpu_count() or 1
    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def validation_fn(
        candidate: onnx.ModelProto, items: Iterable[tuple[np.ndarray, int]]
    ) -> tuple[float, list[float]]:
        """Top-1 as a fraction, and each item's 0/1 score (NNCF's "metric mode")."""
        t0 = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        session = ort.InferenceSession(
            candidate.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        pairs = list(items)
        inputs = np.concatenate([x for x, _ in pairs]) if pairs else np.zeros((0,))
        labels = np.array([y for _, y in pairs])
        predictions = []
        for i in range(0, len(pairs), batch):
            (logits,) = session.run(None, {"input": inputs[i : i + batch]})
            predictions.append(np.asarray(logits).argmax(axis=1))
        right = (np.concatenate(predictions) == labels).astype(np.float64)
        value = float(right.mean())
        callers = {Path(f.filename).stem for f in traceback.extract_stack()}
        kind = "ranking" if "ranker" in callers else "probe" if len(pairs) == 1 else "full"
        call = {"kind": kind, "items": len(pairs), "metric": value,
                "seconds": round(time.perf_counter() - t0, 4)}  # fmt: skip
        with lock:
            calls.append(call)
            with open(spec["calls_log"], "a") as sink:  # survives a timeout
                sink.write(json.dumps(call) + "\n")
        return value, right.tolist()

    work = Path(spec["out"]).parent / f"{spec['case']}-nncf-intermediate"
    shutil.rmtree(work, ignore_errors=True)
    Path(spec["calls_log"]).unlink(missing_ok=True)
    work.mkdir(parents=True)
    baseline = status_mb("VmRSS")
    reset = reset_peak()
    start = time.perf_counter()
    cal = load_npz(Path(spec["calibration"]))["input"]
    val = load_npz(Path(spec["validation"]))
    cal_items = [cal[i : i + 1] for i in range(len(cal))]
    val_items = [(val["input"][i : i + 1], int(val["labels"][i])) for i in range(len(val["input"]))]
    quantized = nncf.quantize_with_accuracy_control(
        model,
        nncf.Dataset(cal_items, lambda x: {"input": x}),
        nncf.Dataset(val_items, lambda item: {"input": item[0]}),
        validation_fn=validation_fn,
        max_drop=spec["max_drop"] / 100 + EPSILON_PTS / 100,
        drop_type=nncf.DropType.ABSOLUTE,
        subset_size=SUBSET,
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
            intermediate_model_dir=str(work)
        ),
    )
    onnx.save(quantized, spec["out"])
    seconds = time.perf_counter() - start
    full_model = work / "intermediate_model.onnx"
    shutil.copyfile(full_model, spec["nncf_full_out"])
    text = "\n".join(recorder.lines)
    reverted = re.search(r"(\d+) out of (\d+) were reverted", text)
    return {
        "seconds": seconds,
        "rss_baseline_mb": baseline,
        "rss_peak_mb": status_mb("VmHWM"),
        "peak_reset": reset,
        "calls": calls,
        "reverted_ops_logged": int(reverted.group(1)) if reverted else None,
        "quantized_ops_logged": int(reverted.group(2)) if reverted else None,
        "log": [line for line in recorder.lines if not line.startswith("Validation of")][-60:],
    }


def worker(tool: str, spec_path: Path, out_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    if tool == "nncf-aa":
        result = _worker_nncf(spec)
    else:
        result = _worker_calibench(spec, accuracy_aware=tool == "calibench-aa")
    result["tool"] = tool
    out_path.write_text(json.dumps(result, indent=2, default=str) + "\n")


def run_worker(tool: str, spec: dict[str, Any], work: Path, timeout_s: float) -> dict[str, Any]:
    """One quantizer in a fresh subprocess; its JSON, or ``{"error": ...}``."""
    spec_path = work / f"{tool}.spec.json"
    out_path = work / f"{tool}.result.json"
    log_path = work / f"{tool}.log"
    spec_path.write_text(json.dumps(spec, indent=2))
    out_path.unlink(missing_ok=True)
    env = bench_env(NNCF_CI="1")
    command = [sys.executable, "-m", "bench.accuracy_aware", "worker", tool, str(spec_path),
               str(out_path)]  # fmt: skip
    loads = loadavg()
    start = time.perf_counter()
    with CpuMonitor() as monitor, log_path.open("w") as sink:
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=sink, stderr=sink,
                                  timeout=timeout_s, check=False)  # fmt: skip
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    wall = time.perf_counter() - start
    base: dict[str, Any] = {
        "tool": tool,
        "process_wall_s": round(wall, 2),
        "foreign_cores": round(monitor.foreign_cores, 3),
        "loadavg_before": loads,
        "loadavg_after": loadavg(),
    }
    if code is None:
        base["error"] = f"timed out after {timeout_s:.0f} s"
    elif code != 0 or not out_path.exists():
        base["error"] = f"exit {code}"
        base["log_tail"] = log_path.read_text().strip().splitlines()[-15:]
    if "error" in base:
        if tool == "nncf-aa":
            base["progress"] = nncf_progress(work)
        return base
    return base | json.loads(out_path.read_text())


def nncf_progress(work: Path) -> dict[str, Any]:
    """How far NNCF got before it was stopped: from its log and the validation calls."""
    text = (work / "nncf-aa.log").read_text() if (work / "nncf-aa.log").exists() else ""
    metric = dict(re.findall(r"Metric of (initial|quantized) model: ([\d.]+)", text))
    drops = [float(d) for d in re.findall(r"new quantization scope is (-?[\d.e-]+)", text)]
    reverted = re.findall(r"Reverted \d+ operations to the floating-point precision: \n\t(\S+)",
                          text)  # fmt: skip
    rounds = re.findall(r"Calculating ranking scores .*? (\d+)/\d+ • (\d+):(\d+):(\d+)", text)
    ranking = [int(r[0]) for r in rounds]
    calls_log = work / "nncf-aa.calls.jsonl"
    calls = (
        [json.loads(line) for line in calls_log.read_text().splitlines() if line.strip()]
        if calls_log.exists()
        else []
    )
    return {
        "initial_metric": float(metric["initial"]) if "initial" in metric else None,
        "quantized_metric": float(metric["quantized"]) if "quantized" in metric else None,
        "revert_steps": [
            {"op": op, "drop_after": d} for op, d in zip(reverted, drops, strict=False)
        ],
        "best_drop": min(drops) if drops else None,
        "ranking_rounds": ranking,
        "ranking_round_seconds": [int(h) * 3600 + int(m) * 60 + int(x) for _, h, m, x in rounds],
        "step_backs": text.count("Re-calculating ranking scores"),
        "calls": calls,
    }
