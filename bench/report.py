"""Turn ``results.json`` into ``RESULTS.md``: the tables, the targets and how they were measured.

Nothing here measures; every figure comes from the results dictionary, so the report can be
regenerated from the JSON alone: ``python -m bench.report bench/results.json > RESULTS.md``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RUNTIME = {"ort": "ORT", "openvino": "OpenVINO"}
CONFIG_LABEL = {"b1t1": "batch 1, 1 thread", "b8t2": "batch 8, 2 threads"}
CALIBENCH = ("calibench-performance", "calibench-mixed")
SPEEDUP_TIE = 0.02
MEMORY_TARGET = 1.2
DROP_LIMIT = 1.0


def _f(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def process_peak(run: dict[str, Any]) -> float:
    """The whole process's peak: imports and model load, or calibration, whichever is higher."""
    return float(max(run.get("rss_import_peak_mb", 0.0), run["rss_peak_mb"]))


def _ok(met: bool) -> str:
    return "**met**" if met else "**missed**"


# --- targets ---------------------------------------------------------------------------------


def _latency(variant: dict[str, Any], config: str) -> dict[str, Any] | None:
    entry = variant.get("latency", {}).get(config)
    return entry if entry and "median_ms" in entry else None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target per model, with the figures it was judged on."""
    out: list[dict[str, Any]] = []
    for name, model in results["models"].items():
        variants = model["variants"]
        out += _speed_targets(name, variants)
        out += _quality_targets(name, variants, model["quality_kind"])
        out += _time_targets(name, model["calibrations"])
    check = results.get("memory_check")
    if check:
        ratio = check.get("delta_ratio")
        big, small = check["runs"][str(check["large"])], check["runs"][str(check["small"])]
        figures = (
            "failed: " + str(big.get("error") or small.get("error"))
            if ratio is None
            else f"peak RSS above baseline {big['rss_delta_mb']:.0f} MB ({check['large']} "
            f"samples) vs {small['rss_delta_mb']:.0f} MB ({check['small']}): "
            f"×{ratio:.2f}; whole-process peak {process_peak(big):.0f} vs "
            f"{process_peak(small):.0f} MB: ×{process_peak(big) / process_peak(small):.2f}"
        )
        out.append({
            "target": f"memory, subset {check['large']} vs {check['small']} ≤ {MEMORY_TARGET}×",
            "model": check["model"], "met": ratio is not None and ratio <= MEMORY_TARGET,
            "figures": figures,
        })  # fmt: skip
    return out


def _speed_targets(name: str, variants: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for config in CONFIG_LABEL:
        ours = {k: _latency(variants[f"{k}@ort"], config) for k in CALIBENCH
                if f"{k}@ort" in variants}  # fmt: skip
        peers = {k: _latency(v, config) for k, v in variants.items()
                 if v["quantizer"] and v["quantizer"] not in CALIBENCH}  # fmt: skip
        ours_ok = {k: v for k, v in ours.items() if v}
        peers_ok = {k: v for k, v in peers.items() if v}
        if not ours_ok or not peers_ok:
            out.append({"target": f"INT8 speed-up ≥ best peer's ({CONFIG_LABEL[config]})",
                        "model": name, "met": False, "figures": "not measured"})  # fmt: skip
            continue
        best_ours = max(ours_ok, key=lambda k: ours_ok[k]["speedup"])
        best_peer = max(peers_ok, key=lambda k: peers_ok[k]["speedup"])
        a, b = ours_ok[best_ours]["speedup"], peers_ok[best_peer]["speedup"]
        fastest = min(peers_ok, key=lambda k: peers_ok[k]["median_ms"])
        on_ort = [k for k in peers_ok if k.endswith("@ort")]
        best_ort = max(on_ort, key=lambda k: peers_ok[k]["speedup"]) if on_ort else None
        figures = (
            ", ".join(f"{_label(k + '@ort')} ×{v['speedup']:.2f}" for k, v in ours_ok.items())
            + f" vs best peer {_label(best_peer)} ×{b:.2f}"
            + (" (over OpenVINO FP32)" if best_peer.endswith("@openvino") else "")
            + f"; gap {100 * (a / b - 1):+.1f}%"
            + (
                f" (best peer on ORT: {_label(best_ort)} ×{peers_ok[best_ort]['speedup']:.2f})."
                if best_ort and best_ort != best_peer
                else "."
            )
            + f" Absolute: {_label(best_ours + '@ort')} {ours_ok[best_ours]['median_ms']:.3g} ms, "
            "fastest peer "
            f"{_label(fastest)} {peers_ok[fastest]['median_ms']:.3g} ms"
            f" (×{peers_ok[fastest]['speedup_vs_ort_fp32']:.2f} over ORT FP32)"
        )
        if abs(a / b - 1) < SPEEDUP_TIE:
            figures += f"; within {SPEEDUP_TIE:.0%}, i.e. a tie within timing noise"
        out.append({"target": f"INT8 speed-up ≥ best peer's ({CONFIG_LABEL[config]})",
                    "model": name, "met": a >= b, "figures": figures})  # fmt: skip
    return out


def _label(key: str) -> str:
    quantizer, _, runtime = key.partition("@")
    names = {"calibench-performance": "calibench performance", "calibench-mixed":
             "calibench mixed", "ort": "ORT quantize_static", "nncf-performance":
             "NNCF performance", "nncf-mixed": "NNCF mixed", "fp32": "FP32"}  # fmt: skip
    return f"{names.get(quantizer, quantizer)} on {RUNTIME.get(runtime, runtime)}"


def _quality_targets(name: str, variants: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    out = []
    for ours in CALIBENCH:
        preset = ours.split("-", 1)[1]
        mine = variants.get(f"{ours}@ort", {}).get("quality")
        theirs = {
            k: variants[k]["quality"]["drop_pts"]
            for k in (f"nncf-{preset}@ort", f"nncf-{preset}@openvino")
            if "quality" in variants.get(k, {})
        }
        target = f"accuracy drop ≤ NNCF {preset}'s and < {DROP_LIMIT:g} point ({preset})"
        if not mine:
            out.append({"target": target, "model": name, "met": False,
                        "figures": "calibench model not evaluated"})  # fmt: skip
            continue
        drop = mine["drop_pts"]
        reference = min(theirs.values()) if theirs else None
        met = drop < DROP_LIMIT and (reference is None or drop <= reference)
        figures = f"calibench {preset} {drop:.2f} pts; " + (
            ", ".join(f"{_label(k)} {v:.2f} pts" for k, v in theirs.items())
            if theirs
            else "NNCF failed, judged on the 1-point limit alone"
        )
        if theirs:
            best = min(theirs, key=lambda k: theirs[k])
            paired = mine.get("paired", {}).get(best)
            if paired:
                b, c = paired["only_this_right"], paired["only_other_right"]
                noise = abs(b - c) <= 2 * (b + c) ** 0.5
                figures += (
                    f". Paired against {_label(best)}: {b} samples right only with calibench, "
                    f"{c} only with NNCF"
                    + (" (|b−c| ≤ 2√(b+c): within noise)" if noise else " (beyond noise)")
                )
        if kind == "agreement" and mine.get("agreement_confident_pct") is not None:
            confident = ", ".join(
                f"{_label(k)} {variants[k]['quality']['agreement_confident_pct']:.1f}%"
                for k in theirs
            )
            figures += (
                f". On the {mine['confident_samples']} FP32-confident samples: calibench "
                f"{mine['agreement_confident_pct']:.1f}% agreement, {confident}"
            )
        out.append({"target": target, "model": name, "met": met, "figures": figures})
    return out


def _time_targets(name: str, calibrations: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    peer = calibrations.get("ort", {})
    for ours in CALIBENCH:
        mine = calibrations.get(ours, {})
        target = f"calibration time ≤ ORT's ({ours.split('-', 1)[1]})"
        if "seconds" not in mine or "seconds" not in peer:
            out.append({"target": target, "model": name, "met": "seconds" in mine,
                        "figures": "a run failed"})  # fmt: skip
            continue
        ort_static = peer["stages"].get("quantize_static")
        figures = (
            f"calibench {mine['seconds']:.2f} s vs ORT {peer['seconds']:.2f} s "
            f"(quant_pre_process + quantize_static); against quantize_static alone "
            f"({ort_static:.2f} s) calibench is "
            + ("also faster" if mine["seconds"] <= ort_static else "**slower**")
        )
        out.append({"target": target, "model": name, "met": mine["seconds"] <= peer["seconds"],
                    "figures": figures})  # fmt: skip
    return out


# --- markdown --------------------------------------------------------------------------------


def _quality_cell(variant: dict[str, Any], kind: str) -> str:
    q = variant.get("quality")
    if not q:
        return "—"
    if kind == "accuracy":
        return f"{q['accuracy_pct']:.2f}% ({0.0 - q['drop_pts']:+.2f})"
    confident = q.get("agreement_confident_pct")
    return f"{q['agreement_pct']:.1f}% / " + ("—" if confident is None else f"{confident:.1f}%")


def _latency_cells(variant: dict[str, Any], config: str) -> tuple[str, str]:
    entry = variant.get("latency", {}).get(config)
    if not entry:
        return "—", "—"
    if "median_ms" not in entry:
        return "failed", "—"
    speedup = f"×{entry['speedup']:.2f}"
    if variant["runtime"] != "ort":
        speedup += f" (×{entry['speedup_vs_ort_fp32']:.2f})"
    return f"{entry['median_ms']:.3g}", speedup


def _model_table(name: str, model: dict[str, Any]) -> list[str]:
    kind = model["quality_kind"]
    fp32_q = model["variants"]["fp32@ort"].get("quality")
    quality_header = (
        "top-1 acc. (Δ pts)" if kind == "accuracy" else "top-1 agreement: all / FP32-confident"
    )
    lines = [
        f"## {model['label']}",
        "",
        f"{model['description']}."
        + (
            f" FP32-confident: the {fp32_q['confident_samples']} of {fp32_q['samples']} samples "
            "where FP32's top-1 softmax probability is ≥ 0.5 (top-1 flips on low-confidence "
            "samples are the bulk of the disagreement)."
            if kind == "agreement" and fp32_q
            else ""
        ),
        "",
        "| quantizer | runtime | calib. s | peak RSS MB: +calib (process) | b1·1t ms | "
        "b1·1t speed-up | b8·2t ms | b8·2t speed-up | " + quality_header + " | size MB | "
        "int8 kernels | float Conv/Gemm | Q/DQ left |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    calibrations = model["calibrations"]
    for variant in model["variants"].values():
        runtime = RUNTIME[variant["runtime"]]
        if variant.get("error"):
            lines.append(f"| {variant['label']} | {runtime} | failed: "
                         f"{str(variant['error'])[:120]} |" + " |" * 11)  # fmt: skip
            continue
        calib = calibrations.get(variant["quantizer"] or "", {})
        first_use = variant["runtime"] == "ort"
        seconds = _f(calib.get("seconds"), 1) if calib and first_use else (
            "(same model)" if calib else "—")  # fmt: skip
        memory = (f"+{calib['rss_delta_mb']:.0f} ({process_peak(calib):.0f})"
                  if calib and first_use else "")  # fmt: skip
        b1, s1 = _latency_cells(variant, "b1t1")
        b8, s8 = _latency_cells(variant, "b8t2")
        kernels = variant.get("kernels", {})
        lines.append(
            f"| {variant['label']} | {runtime} | {seconds} | {memory} | {b1} | {s1} | {b8} | "
            f"{s8} | {_quality_cell(variant, kind)} | {_f(variant.get('size_mb'))} | "
            f"{kernels.get('int8', '—')} | {kernels.get('float_conv_gemm', '—')} | "
            f"{kernels.get('qdq', '—') if variant['runtime'] == 'ort' else 'n/a'} |"
        )
    lines += ["", *_details(model), ""]
    return lines


def _details(model: dict[str, Any]) -> list[str]:
    lines = ["<details><summary>Stages, timing spread, kernels</summary>", ""]
    for name, calib in model["calibrations"].items():
        if "error" in calib:
            log = " / ".join(calib.get("log", []))[-600:]
            lines.append(f"- `{name}` failed: {calib['error']}: `{log}`")
            continue
        stages = ", ".join(f"{k} {v:g}" for k, v in calib.get("stages", {}).items())
        every = calib.get("seconds_runs")
        if every and len(every) > 1:
            foreign = calib.get("foreign_cores_runs") or [None] * len(every)
            runs = ", ".join(
                f"{t:.2f} s / +{m:.0f} MB / {_f(f)} cores"
                for t, m, f in zip(every, calib["rss_delta_mb_runs"], foreign, strict=True)
            )
            stages += ("; " if stages else "") + f"runs (time / memory / other load): {runs}"
        lines.append(
            f"- `{name}`: {calib['seconds']:.2f} s ({stages or 'no stage split'}); RSS baseline "
            f"{calib['rss_baseline_mb']:.0f} MB after imports + model load (import peak "
            f"{calib.get('rss_import_peak_mb', 0):.0f} MB), peak during calibration "
            f"{calib['rss_peak_mb']:.0f} MB; setup (imports, load) {calib['setup_seconds']:.1f} s"
        )
    lines.append("")
    for key, variant in model["variants"].items():
        parts = []
        for config in CONFIG_LABEL:
            entry = variant.get("latency", {}).get(config)
            if entry and "median_ms" in entry:
                parts.append(
                    f"{config} median {entry['median_ms']:.3f} ms "
                    f"(p10–p90 {entry['p10_ms']:.3f}–{entry['p90_ms']:.3f}, "
                    f"{entry['runs']} runs)"
                )
            elif entry:
                parts.append(f"{config} failed: {entry.get('error')}")
        counts = variant.get("kernels", {}).get("counts")
        kernels = "; ".join(
            f"{precision}: " + ", ".join(f"{k} {n}" for k, n in by_kernel.items())
            for precision, by_kernel in counts.items()
        ) if isinstance(counts, dict) and counts and isinstance(
            next(iter(counts.values())), dict) else (
            ", ".join(f"{k} {n}" for k, n in counts.items()) if counts else "")  # fmt: skip
        if variant.get("error"):
            parts = [f"failed: {variant['error']}"]
        lines.append(f"- `{key}`: {'; '.join(parts)}" + (f". Kernels: {kernels}" if kernels
                                                            else ""))  # fmt: skip
    phases = model.get("timing_phases", {})
    if phases:
        lines += [
            "",
            "Other processes' CPU load during each timing phase (cores; every attempt): "
            + "; ".join(
                f"{k} {', '.join(f'{x:.2f}' for x in v['attempts_foreign_cores'])}"
                for k, v in phases.items()
            )
            + ".",
        ]
    lines += ["", "</details>"]
    return lines


def _sharing(results: dict[str, Any]) -> str:
    """One sentence on how much other processes disturbed the timing phases."""
    loads = [
        phase["foreign_cores"]
        for model in results["models"].values()
        for phase in model.get("timing_phases", {}).values()
    ]
    if not loads:
        return ""
    threshold = results["meta"].get("quiet_threshold_cores", 0.25)
    over = sum(1 for x in loads if x >= threshold)
    return (
        f"The machine may be shared: other processes' CPU load during the {len(loads)} timing "
        f"phases was {min(loads):.2f}–{max(loads):.2f} cores ({over} over the "
        f"{threshold:g}-core threshold after up to 3 attempts each); the run waited "
        f"{results['meta'].get('quiet_waited_s', 0):.0f} s in all for a quiet machine."
    )


def write_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    machine, versions = meta["machine"], meta["versions"]
    settings = meta["settings"]
    lines = [
        "# calibench benchmark",
        "",
        f"Generated by `python -m bench.run` (`make bench`) on {meta['date']}"
        + (" — **quick smoke run, figures not meaningful**" if meta["quick"] else "")
        + f"; the whole run took {meta['bench_seconds'] / 60:.1f} min. Raw figures: "
        "`bench/results.json`.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {machine['cpu']}, {machine['cpus']} logical CPUs "
        f"({machine['threads_per_core']} thread(s) per core"
        + (f", {machine['hypervisor']} VM" if machine.get("hypervisor") else "")
        + f"), {machine['memory_gb']} GB RAM; VNNI: **{'yes' if machine['vnni'] else 'no'}**"
        + (f" ({', '.join(machine['vnni_flags'])})" if machine["vnni_flags"] else ""),
        f"- Load average (1/5/15 min) at start {meta['loadavg_start']}, at end "
        f"{meta.get('loadavg_end')}. {_sharing(results)}",
        f"- {machine['os']}, Python {machine['python']}",
        "- "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if not k.startswith("calibench_"))
        + f"; calibench git rev {versions['calibench_git']}, src/calibench digest "
        f"`{versions.get('calibench_src_sha256', '?')}`",
        "",
        "## How it is measured",
        "",
        f"- Same FP32 model and same {settings['calibration_samples']} calibration samples (an "
        "`.npz`, already preprocessed) for every quantizer. Each quantizer runs in a fresh "
        "subprocess (`python -m bench.quantize_one`); its wall time covers reading the data, "
        "calibrating and writing the INT8 model (not imports or loading the FP32 model). Every "
        f"quantizer is run {settings.get('calibration_repeats', 1)}× round-robin; the table "
        "gives the median time and the largest memory of those runs (all runs are listed "
        "below each table).",
        "- Quantizers: calibench `performance` (symmetric activations) and `mixed` "
        "(asymmetric), both with their default bias correction; ORT `quant_pre_process` + "
        "`quantize_static` (QDQ, per-channel, MinMax, activations uint8 / weights int8, reader "
        "batches of 8); NNCF `nncf.quantize` on its ONNX backend, `performance` and `mixed` "
        "presets, `subset_size` = all samples, one sample per item, telemetry off (`NNCF_CI=1`).",
        "- Peak memory: the quantizer process's resident-set high-water mark (`VmHWM`). "
        "`+calib` is the peak *during* calibration minus the resident set just before it, after "
        "the quantizer's imports and loading the FP32 model (the high-water mark is reset there "
        "through `/proc/self/clear_refs`): what calibration itself cost. `(process)` is the "
        "whole process's peak, which also carries each library's import footprint. "
        "`getrusage(RUSAGE_SELF).ru_maxrss` is not used for the figures: in a child started "
        "with fork/vfork + exec it keeps the pre-exec peak, i.e. the *parent's* (the "
        "orchestrator's) memory; it is kept in `results.json` as `ru_maxrss_mb`.",
        "- Latency: FP32 and all INT8 models of a runtime timed **interleaved** in one process "
        "per (runtime, batch, threads): every round runs each model for a block of "
        f"{settings.get('block')} consecutive runs, in an order rotated from round to round, and "
        f"drops the first {settings.get('discard')} runs of each block (right after a switch a "
        "model runs on caches the previous model evicted: 10-30% slower on MobileNetV2, warm "
        f"again by the third run); rounds continue for ~{settings['budget_s']:g} s (at least "
        f"{settings['min_rounds']}, at most {settings['max_rounds']}); medians of the kept runs "
        "are reported. ORT: CPU provider, `ORT_ENABLE_ALL`, sequential, one global intra-op "
        "thread pool of `threads` threads shared by all sessions (with a pool per session, the "
        "idle workers of one session spin on the cores the next session needs: MobileNetV2 at "
        "batch 8 on 2 threads measured 54 ms interleaved vs 25 ms alone), spinning at its "
        "default. OpenVINO: CPU plugin reading the ONNX file, `INFERENCE_NUM_THREADS` = "
        "threads, 1 stream, LATENCY hint, `INFERENCE_PRECISION_HINT` f32 (without it OpenVINO "
        "runs FP32 layers in bf16 on this AMX CPU), input reshaped to the static batch.",
        "- Speed-up = median FP32 latency / median INT8 latency **on the same runtime**. "
        "OpenVINO rows give it over OpenVINO FP32, and in brackets over ORT FP32 (measured in "
        "a different process, so less tightly controlled).",
        "- Kernels: ORT's optimised graph as read by `calibench.runtime.kernels` (integer "
        "kernels such as QLinearConv/QGemm/QLinearAdd; float Conv/FusedConv/Gemm/MatMul; "
        "QuantizeLinear/DequantizeLinear left); OpenVINO: the compiled model's runtime graph, "
        "Convolution/FullyConnected/MatMul by runtime precision.",
        "",
    ]
    for name, model in results["models"].items():
        lines += _model_table(name, model)
    lines += ["## Targets", "", "| target | model | status | figures |", "|---|---|---|---|"]
    for target in results.get("targets", []):
        lines.append(f"| {target['target']} | {target['model']} | {_ok(target['met'])} | "
                     f"{target['figures']} |")  # fmt: skip
    check = results.get("memory_check")
    if check:
        lines += [
            "",
            "## Memory check",
            "",
            f"calibench `performance` on MobileNetV2, calibration data a {check['dataset']} "
            "(decoded lazily), subset sizes "
            f"{check['large']} and {check['small']}, each in a fresh process:",
            "",
            "| subset | seconds | RSS baseline MB | peak during calibration MB | +calib MB | "
            "other load (cores) |",
            "|--:|--:|--:|--:|--:|--:|",
        ]
        for subset, run in check["runs"].items():
            if "error" in run:
                lines.append(f"| {subset} | failed: {run['error']} | | | | |")
                continue
            lines.append(f"| {subset} | {run['seconds']:.1f} | {run['rss_baseline_mb']:.0f} | "
                         f"{run['rss_peak_mb']:.0f} | {run['rss_delta_mb']:.0f} | "
                         f"{_f(run.get('foreign_cores'))} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        raise SystemExit("usage: python -m bench.report <results.json>")
    results = json.loads(Path(args[0]).read_text())
    results["targets"] = targets(results)
    sys.stdout.write(write_markdown(results))


if __name__ == "__main__":
    main()
