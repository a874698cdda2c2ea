"""Run the benchmark: ``python -m bench.run [--models mobilenet_v2,fashion,...] [--quick]``.

For each model, every quantizer calibrates the same FP32 model on the same calibration data in
its own fresh subprocess (:mod:`bench.quantize_one`), then all INT8 models are timed interleaved
with FP32 (:mod:`bench.timing`) on ONNX Runtime and on OpenVINO, evaluated for quality and
inspected for the kernels the runtime picks. calibench's measured placement decides for one
(batch, threads): one model is calibrated per timing setting and timed at that setting only.
A memory check calibrates MobileNetV2 from an image folder with a large and a small subset.
Raw figures go to ``bench/results.json``, the report to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._proc import ROOT, loadavg, log, machine_info, time_quietly, timing_spec, versions
from bench.data import PREPARERS, Prepared, image_folder, save_npz
from bench.machine import QUIET_CORES, CpuMonitor, QuietWaiter
from bench.peers import MIXED, OPENVINO_MEASURED, QUANTIZERS, SETTINGS, quantize_in_subprocess
from bench.quality import (
    detection_quality,
    openvino_kernels,
    ort_kernels,
    predict_openvino,
    predict_ort,
    softmax_top1,
)
from bench.report import process_peak, write_markdown
from bench.targets import targets

CONFIGS = SETTINGS
"""timing configuration -> (batch, threads)"""
MIXED_MODELS = frozenset({"mobilenet_v2", "fashion"})
"""Models that keep the ``mixed``-preset rows of the first comparison (each costs a calibration
and a timed model; the issue-13 rows use calibench's default preset, ``performance``)."""
QUIET_WAIT_BUDGET_S = 600.0
"""Longest the whole run waits, in all, for other processes to leave the CPU (16 timing phases
and 4 models of calibrations)."""


@dataclass(frozen=True)
class Settings:
    calibration_samples: dict[str, int]
    eval_samples: dict[str, int]
    memory_subsets: tuple[int, int]
    calibration_repeats: dict[str, int]
    """Round-robin calibration runs per model (fewer on the slow, later-added models)."""
    block: int
    discard: int
    budget_s: float
    min_rounds: int
    max_rounds: int
    timing_attempts: int
    """A timing phase disturbed by other processes is rerun, up to this many times in all."""
    timing_overrides: dict[str, dict[str, int]]
    """Per model: shorter blocks and fewer rounds where one run takes long (the detector at
    batch 8 runs ~0.5 s: 10-run blocks of 7 models would take minutes a round)."""


FULL = Settings(
    calibration_samples={"mobilenet_v2": 300, "fashion": 300, "efficientnet_lite0": 300,
                         "text_detector": 32},
    eval_samples={"mobilenet_v2": 500, "fashion": 10000, "efficientnet_lite0": 500,
                  "text_detector": 100},
    memory_subsets=(1000, 100),
    calibration_repeats={"mobilenet_v2": 3, "fashion": 3, "efficientnet_lite0": 1,
                         "text_detector": 1},
    block=10, discard=3, budget_s=30.0, min_rounds=10, max_rounds=500, timing_attempts=3,
    timing_overrides={"text_detector": {"block": 5, "discard": 2, "min_rounds": 5}},
)  # fmt: skip
QUICK = Settings(
    calibration_samples={"mobilenet_v2": 64, "fashion": 64, "efficientnet_lite0": 64,
                         "text_detector": 16},
    eval_samples={"mobilenet_v2": 100, "fashion": 1000, "efficientnet_lite0": 100,
                  "text_detector": 20},
    memory_subsets=(200, 20),
    calibration_repeats={"mobilenet_v2": 1, "fashion": 1, "efficientnet_lite0": 1,
                         "text_detector": 1},
    block=5, discard=2, budget_s=2.0, min_rounds=3, max_rounds=50, timing_attempts=1,
    timing_overrides={},
)  # fmt: skip


QUICK_WAIT_BUDGET_S = 20.0
WAITER = QuietWaiter(QUIET_WAIT_BUDGET_S, log)


def combine_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated calibrations of one quantizer: the median-time run's figures, with memory from
    the run that used the most (worst case), and every run's time and memory listed."""
    if "error" in runs[0]:
        return runs[0]
    by_time = sorted(runs, key=lambda r: r["seconds"])
    combined = dict(by_time[(len(by_time) - 1) // 2])
    worst = max(runs, key=lambda r: r["rss_delta_mb"])
    for key in ("rss_baseline_mb", "rss_peak_mb", "rss_delta_mb", "rss_import_peak_mb"):
        combined[key] = worst[key]
    combined["seconds_runs"] = [r["seconds"] for r in runs]
    combined["rss_delta_mb_runs"] = [r["rss_delta_mb"] for r in runs]
    combined["foreign_cores_runs"] = [r.get("foreign_cores") for r in runs]
    return combined


def _variants(prep: Prepared, calibrations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every (model, runtime) pair measured, ORT rows first: FP32 and each INT8 model on the
    runtimes its quantizer lists, at the settings it was made for (measured placement: one)."""
    fp32_size = round(prep.model.stat().st_size / 1e6, 3)
    variants: dict[str, Any] = {}
    for runtime in ("ort", "openvino"):
        variants[f"fp32@{runtime}"] = {
            "label": "FP32", "runtime": runtime, "quantizer": None, "family": "fp32",
            "path": str(prep.model), "size_mb": fp32_size, "configs": list(CONFIGS),
        }  # fmt: skip
        for name, result in calibrations.items():
            quantizer = QUANTIZERS[name]
            if runtime not in quantizer.runtimes:
                continue
            variants[f"{name}@{runtime}"] = {
                "label": quantizer.label, "runtime": runtime, "quantizer": name,
                "family": quantizer.family, "path": result.get("output"),
                "size_mb": result.get("size_mb"), "error": result.get("error"),
                "not_available": bool(result.get("not_available")),
                "configs": [quantizer.setting] if quantizer.setting else list(CONFIGS),
            }  # fmt: skip
    return variants


CONFIDENT = 0.5
"""FP32 top-1 probability from which a prediction counts as confident (agreement models)."""


def _quality(prep: Prepared, variants: dict[str, Any]) -> None:
    """Quality of every variant; for agreement, "right" means "same top-1 as FP32 on ORT".

    Also counts, for each calibench model against each peer model, the samples only one of the
    two gets right: the paired (McNemar) view of whether a difference is more than noise.
    """
    if prep.quality == "detection":
        _detection_quality(prep, variants)
        return
    right: dict[str, np.ndarray] = {}
    reference: np.ndarray | None = None
    confident: np.ndarray | None = None
    for key, variant in variants.items():
        if variant.get("error"):
            continue
        path = Path(variant["path"])
        predict = predict_ort if variant["runtime"] == "ort" else predict_openvino
        try:
            logits = predict(path, prep.eval_inputs, prep.input_name, prep.eval_batch)
        except Exception as exc:
            variant["error"] = f"{variant['runtime']} could not run it: {exc}"
            continue
        pred = logits.argmax(axis=1)
        if key == "fp32@ort":
            reference = pred
            confident = softmax_top1(logits) >= CONFIDENT
        assert reference is not None and confident is not None, "FP32 on ORT is evaluated first"
        agree = pred == reference
        quality: dict[str, Any] = {
            "samples": len(pred),
            "agreement_pct": round(100 * float(np.mean(agree)), 2),
            "confident_samples": int(confident.sum()),
            "agreement_confident_pct": (
                round(100 * float(np.mean(agree[confident])), 2) if confident.any() else None
            ),
        }
        if prep.eval_labels is not None:
            right[key] = pred == prep.eval_labels
            quality["accuracy_pct"] = round(100 * float(np.mean(right[key])), 2)
        else:
            right[key] = agree
        variant["quality"] = quality
    fp32 = variants["fp32@ort"]["quality"]
    for key, variant in variants.items():
        if "quality" not in variant:
            continue
        q = variant["quality"]
        if prep.quality == "accuracy":
            q["drop_pts"] = round(fp32["accuracy_pct"] - q["accuracy_pct"], 2)
        else:
            q["drop_pts"] = round(100 - q["agreement_pct"], 2)
        if key.startswith("calibench-"):
            q["paired"] = {
                other: {
                    "only_this_right": int(np.sum(right[key] & ~right[other])),
                    "only_other_right": int(np.sum(~right[key] & right[other])),
                }
                for other, theirs in variants.items()
                if other in right and theirs["quantizer"] and other != key
            }


def _detection_quality(prep: Prepared, variants: dict[str, Any]) -> None:
    """mAP of every variant against the true boxes; the drop is in mAP@0.5 points."""
    assert prep.eval_boxes is not None, "a detection model carries its true boxes"
    for variant in variants.values():
        if variant.get("error"):
            continue
        predict = predict_ort if variant["runtime"] == "ort" else predict_openvino
        try:
            outputs = predict(Path(variant["path"]), prep.eval_inputs, prep.input_name,
                              prep.eval_batch)  # fmt: skip
        except Exception as exc:
            variant["error"] = f"{variant['runtime']} could not run it: {exc}"
            continue
        variant["quality"] = detection_quality(outputs, prep.eval_boxes)
    fp32 = variants["fp32@ort"]["quality"]
    for variant in variants.values():
        if "quality" in variant:
            variant["quality"]["drop_pts"] = round(fp32["map50"] - variant["quality"]["map50"], 2)


def _kernels(prep: Prepared, variants: dict[str, Any]) -> None:
    shape = (1, *prep.eval_inputs.shape[1:])
    for variant in variants.values():
        if variant.get("error"):
            continue
        path = Path(variant["path"])
        try:
            if variant["runtime"] == "ort":
                variant["kernels"] = ort_kernels(path)
            else:
                variant["kernels"] = openvino_kernels(path, prep.input_name, shape)
        except Exception as exc:
            variant["kernels"] = {"error": str(exc).splitlines()[0][:300]}


def _timing(
    prep: Prepared, variants: dict[str, Any], settings: Settings, work: Path
) -> dict[str, Any]:
    """Time every variant; return the per-phase record (foreign load, attempts)."""
    settings = dataclasses.replace(settings, **settings.timing_overrides.get(prep.name, {}))
    phases: dict[str, Any] = {}
    feeds = work / "timing-inputs.npz"
    save_npz(feeds, **{prep.input_name: prep.eval_inputs[: max(b for b, _ in CONFIGS.values())]})
    for config, (batch, threads) in CONFIGS.items():
        for runtime in ("ort", "openvino"):
            keys = [k for k, v in variants.items() if v["runtime"] == runtime
                    and config in v["configs"] and not v.get("error")]  # fmt: skip
            spec_path = work / f"timing-{config}-{runtime}.json"
            out_path = work / f"timing-{config}-{runtime}.out.json"
            log(f"  timing {runtime} batch {batch}, {threads} thread(s): {len(keys)} models")
            models = {k: variants[k]["path"] for k in keys}
            spec = timing_spec(runtime, batch, threads, feeds, settings, models)
            result = time_quietly(spec, spec_path, out_path, settings.timing_attempts, WAITER.wait)
            phases[f"{config}@{runtime}"] = {
                "foreign_cores": result["foreign_cores"],
                "attempts_foreign_cores": result["attempts_foreign_cores"],
                "rounds": result["rounds"],
                "seconds": result["seconds"],
            }
            for key in keys:
                entry = result.get(key)
                if entry is None:
                    variants[key].setdefault("latency", {})[config] = {
                        "error": result["errors"].get(key, "not timed")
                    }
                    continue
                entry["rounds"] = result["rounds"]
                variants[key].setdefault("latency", {})[config] = entry
    for config in CONFIGS:
        ort_fp32 = variants["fp32@ort"]["latency"][config]["median_ms"]
        for variant in variants.values():
            entry = variant.get("latency", {}).get(config)
            if not entry or "median_ms" not in entry:
                continue
            same = variants[f"fp32@{variant['runtime']}"]["latency"][config]["median_ms"]
            entry["speedup"] = same / entry["median_ms"]
            entry["speedup_vs_ort_fp32"] = ort_fp32 / entry["median_ms"]
    return phases


def _same_as_rule(calibrations: dict[str, dict[str, Any]]) -> None:
    """Mark each measured model whose graph is the rule model's (metadata aside): then any
    latency difference between the two is timing noise, and the report says so."""
    import onnx

    pairs = (("calibench-performance", "calibench-measured"),
             ("calibench-openvino", OPENVINO_MEASURED))  # fmt: skip
    for rule_name, measured in pairs:
        rule = calibrations.get(rule_name, {}).get("output")
        if not rule or "error" in calibrations[rule_name]:
            continue
        graph = onnx.load(rule).graph.SerializeToString()
        for name, calib in calibrations.items():
            if name.startswith(measured) and "error" not in calib:
                theirs = onnx.load(calib["output"]).graph.SerializeToString()
                calib["same_graph_as_rule"] = theirs == graph


def quantizers_for(model: str) -> list[str]:
    return [q for q in QUANTIZERS if q not in MIXED or model in MIXED_MODELS]


def bench_model(name: str, settings: Settings, root: Path) -> dict[str, Any]:
    log(f"{name}: preparing model and data")
    samples, repeats = settings.calibration_samples[name], settings.calibration_repeats[name]
    prep = PREPARERS[name](root, samples, settings.eval_samples[name])
    work = root / name / f"run-{samples}"
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {q: [] for q in quantizers_for(name)}
    for repeat in range(repeats):
        WAITER.wait()
        for quantizer in runs:  # round-robin, so drifts hit every quantizer alike
            if runs[quantizer] and "error" in runs[quantizer][0]:
                continue
            with CpuMonitor() as monitor:
                result = quantize_in_subprocess(
                    quantizer, prep.model, prep.calibration, work / f"{quantizer}.onnx", samples
                )
            result["foreign_cores"] = round(monitor.foreign_cores, 3)
            if "error" in result:
                log(f"  {quantizer} FAILED: {result['error']} {result.get('log', '')}")
            else:
                log(
                    f"  {quantizer} (run {repeat + 1}/{repeats}): "
                    f"{result['seconds']:.1f} s, peak RSS +{result['rss_delta_mb']} MB"
                )
            runs[quantizer].append(result)
    calibrations = {q: combine_runs(r) for q, r in runs.items()}
    _same_as_rule(calibrations)
    variants = _variants(prep, calibrations)
    log("  quality")
    _quality(prep, variants)
    log("  kernels")
    _kernels(prep, variants)
    phases = _timing(prep, variants, settings, work)
    return {
        "timing_phases": phases,
        "label": prep.label,
        "description": prep.description,
        "quality_kind": prep.quality,
        "calibration_samples": samples,
        "calibration_repeats": repeats,
        "timing_overrides": settings.timing_overrides.get(name),
        "calibrations": calibrations,
        "variants": variants,
    }


def memory_check(settings: Settings, root: Path) -> dict[str, Any]:
    """calibench (performance) on MobileNetV2 from an image folder: large vs small subset."""
    from zoo.mobilenet_v2 import build_mobilenet_v2

    large, small = settings.memory_subsets
    model = build_mobilenet_v2(root / "mobilenet_v2" / "mobilenet_v2.onnx")
    log(f"memory check: image folder of {large} crops")
    folder = image_folder(root, large)
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for subset in (large, small):
            log(f"  calibench performance, subset {subset}")
            WAITER.wait()
            with CpuMonitor() as monitor:
                runs[str(subset)] = quantize_in_subprocess(
                    "calibench-performance",
                    model,
                    folder,
                    Path(tmp) / f"subset-{subset}.onnx",
                    subset,
                    preprocess="imagenet",
                )
            runs[str(subset)]["foreign_cores"] = round(monitor.foreign_cores, 3)
    out: dict[str, Any] = {"model": "mobilenet_v2", "dataset": f"image folder, {large} files",
                           "large": large, "small": small, "runs": runs}  # fmt: skip
    big, little = runs[str(large)], runs[str(small)]
    if "error" not in big and "error" not in little:
        out["delta_ratio"] = big["rss_delta_mb"] / little["rss_delta_mb"]
        out["peak_ratio"] = process_peak(big) / process_peak(little)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--models",
        default=",".join(PREPARERS),
        help=f"comma-separated, from: {', '.join(PREPARERS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: fewer samples and timing rounds (figures not meaningful)",
    )
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="where RESULTS.md and results.json go "
        "(default: bench/, or BUILD_DIR/quick/ with --quick)",
    )
    parser.add_argument("--no-memory-check", action="store_true")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in PREPARERS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(PREPARERS)}")
    settings = QUICK if args.quick else FULL
    if args.quick:  # a smoke run's figures mean nothing: do not wait minutes for quiet
        WAITER.budget_s = QUICK_WAIT_BUDGET_S

    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick,
            "machine": machine_info(),
            "versions": versions(),
            "settings": settings.__dict__ | {"configs": CONFIGS},
            "loadavg_start": loadavg(),
        },
        "models": {},
    }
    for name in models:
        results["models"][name] = bench_model(name, settings, args.build_dir)
    if not args.no_memory_check:
        results["memory_check"] = memory_check(settings, args.build_dir)
    results["meta"]["loadavg_end"] = loadavg()
    results["meta"]["quiet_waited_s"] = round(WAITER.waited_s, 1)
    results["meta"]["quiet_threshold_cores"] = QUIET_CORES
    results["meta"]["bench_seconds"] = round(time.perf_counter() - started, 1)

    results["targets"] = targets(results)
    out_dir = args.out_dir or (args.build_dir / "quick" if args.quick else ROOT / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "RESULTS.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(write_markdown(results))
    log(f"wrote {md_path} and {json_path} ({results['meta']['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
