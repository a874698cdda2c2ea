"""AccuracyAware side by side with ``nncf.quantize_with_accuracy_control``.

``python -m bench.accuracy_aware [--cases fashion,mobilenet_v2] [--quick]`` writes
``bench/ACCURACY_AWARE.md`` and ``bench/accuracy_aware.json``.

For each case both tools get the same FP32 model, the same 300 calibration samples (an ``.npz``)
and the same annotated validation samples, with the same maximum drop, and each runs alone in a
fresh subprocess (``python -m bench.accuracy_aware worker ...``): wall time of the quantizer
call, peak resident memory during it, the model evaluations it spent. calibench's Default
method runs the same way, to show that it misses the drop. Then, in this process, one shared
function (:func:`bench.quality.predict_ort`) measures the accuracy of every model on the same
validation data, and :mod:`bench.timing` times FP32 and the INT8 models interleaved in one
process (batch 1, one thread), on ONNX Runtime and on OpenVINO.

NNCF's validation function runs ONNX Runtime (CPU, all cores, like calibench's own validation)
and returns the top-1 fraction and the 0/1 score of every item, which puts NNCF's evaluator in
"metric mode": its ranking scores each group of quantizers by the metric on the ranking subset.
Every call is recorded and classified by its caller: the one-item probe NNCF makes to detect
the mode, the calls from its ranker (on ``subset_size`` items), and full validation passes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import (
    ROOT,
    loadavg,
    log,
    machine_info,
    time_quietly,
    timing_spec,
    versions,
)
from bench.accuracy_aware_cases import (
    CALIBENCH_TIMEOUT_S,
    EPSILON_PTS,
    FULL_TIMING,
    MODEL_KEYS,
    NNCF_TIMEOUT_S,
    QUICK_TIMING,
    TIMING_ATTEMPTS,
    Case,
    TimingSettings,
    accuracy,
    choose_fashion_validation,
    load_npz,
    prepare_fashion,
    prepare_mobilenet,
)
from bench.accuracy_aware_report import count_ops, summarise, write_markdown
from bench.accuracy_aware_workers import nncf_progress, run_worker, worker
from bench.data import save_npz
from bench.machine import QuietWaiter
from bench.quality import openvino_kernels, ort_kernels, predict_openvino

# --- shared measurements ----------------------------------------------------------------------


def _timing(
    runtime: str, models: dict[str, str], inputs: Path, settings: TimingSettings, work: Path,
    waiter: QuietWaiter,
) -> dict[str, Any]:  # fmt: skip
    spec = timing_spec(runtime, 1, 1, inputs, settings, models)
    spec_path = work / f"timing-{runtime}.json"
    out_path = work / f"timing-{runtime}.out.json"
    result = time_quietly(spec, spec_path, out_path, TIMING_ATTEMPTS, waiter.wait, "timing")
    fp32 = result["fp32"]["median_ms"]
    for label in models:
        if label in result and label != "fp32":
            result[label]["speedup"] = fp32 / result[label]["median_ms"]
    return result


def run_case(
    case: Case, candidates: list[np.ndarray] | None, work: Path, settings: TimingSettings,
    waiter: QuietWaiter,
) -> dict[str, Any]:  # fmt: skip
    models = {k: work / f"{k}.onnx" for k in MODEL_KEYS}
    for path in models.values():
        path.unlink(missing_ok=True)
    shutil.rmtree(work / f"{case.name}-nncf-intermediate", ignore_errors=True)

    def spec(out: str) -> dict[str, Any]:
        return {
            "case": case.name, "model": str(case.model), "calibration": str(case.calibration),
            "validation": str(case.validation), "dataset": str(case.dataset),
            "max_drop": case.max_drop, "eval_batch": case.eval_batch,
            "out": str(models[out]), "nncf_full_out": str(models["nncf-full"]),
            "calls_log": str(work / "nncf-aa.calls.jsonl"),
        }  # fmt: skip

    runs: dict[str, dict[str, Any]] = {}
    log(f"{case.name}: calibench Default")
    runs["calibench-default"] = run_worker(
        "calibench-default", spec("calibench-default"), work, CALIBENCH_TIMEOUT_S
    )
    if "error" in runs["calibench-default"]:
        raise RuntimeError(f"calibench Default failed: {runs['calibench-default']}")
    if candidates is not None:
        choose_fashion_validation(case, candidates, models["calibench-default"])
        log(f"  validation: {case.description}; max drop {case.max_drop}")
    for tool, timeout in (("calibench-aa", CALIBENCH_TIMEOUT_S), ("nncf-aa", NNCF_TIMEOUT_S)):
        log(f"{case.name}: {tool}")
        runs[tool] = run_worker(tool, spec(tool), work, timeout)
        r = runs[tool]
        done = r.get("error") or f"{r['seconds']:.1f} s"
        log(f"  {done} (other load {r['foreign_cores']} cores)")
    result = {"case": asdict(case) | {"model": str(case.model)}, "runs": runs, "work": str(work)}
    return result | measure(case.name, case.model, case.validation, case.max_drop,
                            case.eval_batch, work, settings, waiter)  # fmt: skip


def measure(
    name: str, model: Path, validation: Path, max_drop: float, eval_batch: int, work: Path,
    settings: TimingSettings, waiter: QuietWaiter,
) -> dict[str, Any]:  # fmt: skip
    """Shared accuracy, kernels and interleaved timing of every model the quantizers wrote."""
    models = {"fp32": model} | {k: work / f"{k}.onnx" for k in MODEL_KEYS}  # FP32 first
    intermediate = work / f"{name}-nncf-intermediate" / "intermediate_model.onnx"
    if not models["nncf-full"].exists() and intermediate.exists():  # NNCF stopped early
        shutil.copyfile(intermediate, models["nncf-full"])
    ok = {k: p for k, p in models.items() if p.exists()}
    case = argparse.Namespace(name=name, max_drop=max_drop, eval_batch=eval_batch)
    val = load_npz(validation)
    log(f"{case.name}: shared accuracy, kernels")
    variants: dict[str, dict[str, Any]] = {}
    for key, path in ok.items():
        v: dict[str, Any] = {"path": str(path), "size_mb": round(path.stat().st_size / 1e6, 3)}
        v["accuracy_ort"] = accuracy(path, val["input"], val["labels"], case.eval_batch)
        v["kernels_ort"] = ort_kernels(path)
        v["quantize_linear_nodes"] = count_ops(path, "QuantizeLinear")
        v["dequantize_linear_nodes"] = count_ops(path, "DequantizeLinear")
        if key in ("fp32", "nncf-full", "nncf-aa", "calibench-aa"):
            logits = predict_openvino(path, val["input"], "input", case.eval_batch)
            v["accuracy_openvino"] = 100.0 * float(np.mean(logits.argmax(1) == val["labels"]))
            v["kernels_openvino"] = openvino_kernels(path, "input", (1, *val["input"].shape[1:]))
        variants[key] = v
    fp32 = variants["fp32"]["accuracy_ort"]
    for v in variants.values():
        v["drop_ort"] = fp32 - v["accuracy_ort"]
        v["met_ort"] = v["drop_ort"] <= case.max_drop + EPSILON_PTS
        if "accuracy_openvino" in v:
            v["drop_openvino"] = variants["fp32"]["accuracy_openvino"] - v["accuracy_openvino"]

    feeds = work / "timing-inputs.npz"
    save_npz(feeds, input=val["input"][:1])
    timing: dict[str, Any] = {}
    for runtime, keys in (
        ("ort", list(ok)),
        ("openvino", [k for k in ("fp32", "nncf-full", "nncf-aa", "calibench-aa") if k in ok]),
    ):
        log(f"{case.name}: timing {runtime}, batch 1, 1 thread: {', '.join(keys)}")
        timing[runtime] = _timing(
            runtime, {k: str(ok[k]) for k in keys}, feeds, settings, work, waiter
        )
    return {"variants": variants, "timing": timing}


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["worker"]:
        worker(args_in[1], Path(args_in[2]), Path(args_in[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.accuracy_aware", description=__doc__)
    parser.add_argument("--cases", default="fashion,mobilenet_v2")
    parser.add_argument("--quick", action="store_true", help="short timing (figures rough)")
    parser.add_argument(
        "--build-dir", type=Path, default=ROOT / "build" / "bench" / "accuracy_aware"
    )
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite ACCURACY_AWARE.md from OUT_DIR/accuracy_aware.json, run nothing",
    )
    parser.add_argument(
        "--remeasure",
        metavar="CASE",
        help="redo the accuracy, kernels and timing of CASE from the saved JSON and the models "
        "in the build folder (no quantizer runs), then rewrite the report",
    )
    args = parser.parse_args(args_in)
    if args.remeasure:
        saved = json.loads((args.out_dir / "accuracy_aware.json").read_text())
        result = saved["cases"][args.remeasure]
        work = Path(result.get("work", args.build_dir / args.remeasure))
        nn = result["runs"].get("nncf-aa", {})
        if "error" in nn and "progress" not in nn:
            nn["progress"] = nncf_progress(work)
        c = result["case"]
        waiter = QuietWaiter(120.0, log)
        settings = QUICK_TIMING if args.quick else FULL_TIMING
        result |= measure(args.remeasure, Path(c["model"]), Path(c["validation"]),
                          c["max_drop"], c["eval_batch"], work, settings, waiter)  # fmt: skip
        result["remeasured"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        result["remeasure_loadavg"] = loadavg()
        (args.out_dir / "accuracy_aware.json").write_text(
            json.dumps(saved, indent=2, default=str) + "\n"
        )
        args.report_only = True
    if args.report_only:
        saved = json.loads((args.out_dir / "accuracy_aware.json").read_text())
        for name, result in saved["cases"].items():
            if "error" in result:
                continue
            nn = result["runs"].get("nncf-aa", {})
            work = Path(result.get("work", args.build_dir / name))
            if "error" in nn and (work / "nncf-aa.log").exists():
                nn["progress"] = nncf_progress(work)
            saved["summary"][name] = summarise(result)
        (args.out_dir / "accuracy_aware.json").write_text(
            json.dumps(saved, indent=2, default=str) + "\n"
        )
        (args.out_dir / "ACCURACY_AWARE.md").write_text(write_markdown(saved))
        return
    settings = QUICK_TIMING if args.quick else FULL_TIMING
    waiter = QuietWaiter(120.0, log)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
            "machine": machine_info(),
            "versions": versions(),
            "loadavg_start": loadavg(),
            "timing": asdict(settings),
        },
        "cases": {},
        "summary": {},
    }
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        work = args.build_dir / name
        work.mkdir(parents=True, exist_ok=True)
        log(f"{name}: preparing model and data")
        candidates: list[np.ndarray] | None = None
        if name == "fashion":
            case, candidates = prepare_fashion(args.build_dir)
        elif name == "mobilenet_v2":
            case = prepare_mobilenet(args.build_dir)
        else:
            parser.error(f"unknown case {name}")
        try:
            result = run_case(case, candidates, work, settings, waiter)
        except Exception as exc:  # one case failing is a result; the other still runs
            log(f"{name} FAILED: {exc}")
            results["cases"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        results["cases"][name] = result
        results["summary"][name] = summarise(result)
    results["meta"]["loadavg_end"] = loadavg()
    results["meta"]["quiet_waited_s"] = round(waiter.waited_s, 1)
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "accuracy_aware.json").write_text(
        json.dumps(results, indent=2, default=str) + "\n"
    )
    (args.out_dir / "ACCURACY_AWARE.md").write_text(write_markdown(results))
    log(f"wrote {args.out_dir / 'ACCURACY_AWARE.md'} ({results['meta']['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
