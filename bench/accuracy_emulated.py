"""The AVX2 column of :mod:`bench.accuracy`: accuracy under ``qemu-x86_64 -cpu Haswell`` (ORT's
real AVX2 kernels, emulated), the kernel probe that shows which arithmetic each column got, and
AVX2 instruction counts under callgrind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT, bench_env, log
from bench.accuracy_models import (
    INSTRUCTION_QUANTIZERS,
    INSTRUCTION_RUNS,
    QEMU,
    QEMU_BATCH,
    QEMU_CPU,
    QEMU_LABEL,
    QEMU_PARALLEL,
    VALGRIND,
    VALGRIND_PARALLEL,
    WORK,
    Settings,
    predict,
    score,
)


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
    env = bench_env(OMP_NUM_THREADS="1")

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
    env = bench_env(OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
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
