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
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._proc import ROOT, log, time_quietly, timing_spec
from bench.accuracy_emulated import count_worker, instruction_phase, qemu_phase, qemu_worker
from bench.accuracy_models import (
    CALIBRATION_SAMPLES,
    DATE,
    FULL,
    QUANTIZERS,
    QUICK,
    WORK,
    Case,
    Settings,
    predict,
    prepare,
    quantize,
    score,
)
from bench.accuracy_report import native_cpu, summarize, write_markdown

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
