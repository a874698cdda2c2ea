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

from bench.targets import CONFIG_LABEL, RUNTIME, process_peak, targets


def _f(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def _ok(met: bool | None) -> str:
    return "not measured" if met is None else "**met**" if met else "**missed**"


SETTING_SHORT = {"b1t1": "b1·1t", "b8t2": "b8·2t"}


def cpu_line(machine: dict[str, Any]) -> str:
    """The CPU and its ISA class, as every speed figure is labelled."""
    flags = ", ".join(machine.get("int8_flags") or []) or "none"
    return (
        f"{machine['cpu']} — ISA class **{machine.get('isa_label', 'not recorded')}** "
        f"(INT8 flags: {flags})"
    )


# --- markdown --------------------------------------------------------------------------------


def _quality_cell(variant: dict[str, Any], kind: str) -> str:
    q = variant.get("quality")
    if not q:
        return "—"
    if kind == "accuracy":
        return f"{q['accuracy_pct']:.2f}% ({0.0 - q['drop_pts']:+.2f})"
    if kind == "detection":
        return f"{q['map50']:.1f} ({0.0 - q['drop_pts']:+.2f}) / {q['map']:.1f}"
    confident = q.get("agreement_confident_pct")
    return f"{q['agreement_pct']:.1f}% / " + ("—" if confident is None else f"{confident:.1f}%")


def _latency_cells(variant: dict[str, Any], config: str) -> tuple[str, str]:
    entry = variant.get("latency", {}).get(config)
    if config not in variant.get("configs", [config]):
        made_for = ", ".join(SETTING_SHORT.get(c, c) for c in variant["configs"])
        return "—", f"n/a (made for {made_for})"
    if not entry:
        return "—", "—"
    if "median_ms" not in entry:
        return "failed", "—"
    speedup = f"×{entry['speedup']:.2f}"
    if variant["runtime"] != "ort":
        speedup += f" (×{entry['speedup_vs_ort_fp32']:.2f})"
    return f"{entry['median_ms']:.3g}", speedup


def _model_table(name: str, model: dict[str, Any], cpu: str) -> list[str]:
    kind = model["quality_kind"]
    fp32_q = model["variants"]["fp32@ort"].get("quality")
    quality_header = {
        "accuracy": "top-1 acc. (Δ pts)",
        "detection": "mAP@0.5 (Δ pts) / mAP@[.5:.95]",
    }.get(kind, "top-1 agreement: all / FP32-confident")
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
        f"Calibration: {model.get('calibration_samples')} samples, each quantizer run "
        f"{model.get('calibration_repeats', 1)}×. Speed-ups measured on: {cpu}."
        + (
            " Timing here: "
            + ", ".join(f"{k} {v}" for k, v in model["timing_overrides"].items())
            + " (one run takes long)."
            if model.get("timing_overrides")
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
            what = "" if variant.get("not_available") else "failed: "
            lines.append(f"| {variant['label']} | {runtime} | {what}"
                         f"{str(variant['error'])[:160]} |" + " |" * 11)  # fmt: skip
            continue
        calib = calibrations.get(variant["quantizer"] or "", {})
        first_use = variant["runtime"] == "ort" or (variant["quantizer"] or "").startswith(
            "calibench-openvino"
        )
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
        if calib.get("not_available"):
            lines.append(f"- `{name}`: {calib['error']}")
            continue
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
        if calib.get("notes"):
            stages += ("; " if stages else "") + " / ".join(calib["notes"])
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
            parts = [("" if variant.get("not_available") else "failed: ") + variant["error"]]
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
    attempts = results["meta"]["settings"].get("timing_attempts", 3)
    over = sum(1 for x in loads if x >= threshold)
    return (
        f"The machine may be shared: other processes' CPU load during the {len(loads)} timing "
        f"phases was {min(loads):.2f}–{max(loads):.2f} cores ({over} over the "
        f"{threshold:g}-core threshold after up to {attempts} attempts each); the run waited "
        f"{results['meta'].get('quiet_waited_s', 0):.0f} s in all for a quiet machine."
    )


def _targets_section(judged: list[dict[str, Any]], cpu: str) -> list[str]:
    """The first comparison's targets, then issue 13's with the setting and CPU of each."""
    lines = ["## Targets", "", f"All speed figures: {cpu}.", "",
             "| target | model | status | figures |", "|---|---|---|---|"]  # fmt: skip
    for target in judged:
        if target.get("issue") != 13:
            lines.append(f"| {target['target']} | {target['model']} | {_ok(target['met'])} | "
                         f"{target['figures']} |")  # fmt: skip
    lines += [
        "", "### Issue 13: measured placement and OpenVINO", "",
        "| target | model | setting | CPU, ISA class | status | figures |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for target in judged:
        if target.get("issue") == 13:
            lines.append(
                f"| {target['target']} | {target['model']} | "
                f"{SETTING_SHORT.get(target['setting'], target['setting'])} | {target['cpu']} | "
                f"{_ok(target['met'])} | {target['figures']} |"
            )
    return lines


def write_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    machine, versions = meta["machine"], meta["versions"]
    settings = meta["settings"]
    cpu = cpu_line(machine)
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
        f"- ISA class of every speed figure below: {cpu}, read from /proc/cpuinfo"
        + (
            f" (`CALIBENCH_CPU_FLAGS={machine['cpu_flags_override']}` was set for calibench: it "
            "changes what calibench assumes, not what this CPU executes)"
            if machine.get("cpu_flags_override") is not None
            else ""
        )
        + ". No figure here is from an AVX2-only CPU: this machine cannot time one (under qemu "
        "the emulator is timed, not ORT's AVX2 kernels), so the AVX2-only targets are marked "
        "not measured; `bench.accuracy` covers that class for accuracy only.",
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
        "- Same FP32 model and same calibration samples (an `.npz`, already preprocessed; count "
        "per model in its section) for every quantizer. Each quantizer runs in a fresh "
        "subprocess (`python -m bench.quantize_one`); its wall time covers reading the data, "
        "calibrating and writing the INT8 model (not imports or loading the FP32 model). Every "
        "quantizer is run round-robin (MobileNetV2 and the Fashion CNN 3×, the later-added "
        "models once, to bound the bench's time); the table gives the median time and the "
        "largest memory of those runs (all runs are listed below each table).",
        '- Quantizers: calibench **rule** placement (`placement="rule"`: every layer ORT can '
        "run in INT8 goes to INT8), `performance` (symmetric activations) and, on MobileNetV2 "
        "and the Fashion CNN, `mixed` (asymmetric), both with their default bias correction; "
        'calibench **measured** placement (`placement="measured"`, `performance`): layers '
        "are timed in ORT at one (batch, threads) and kept FP32 where INT8 is not faster, so "
        "one model is calibrated *per timing setting* and timed at that setting only (the "
        'other cell reads n/a); calibench **OpenVINO** placement (`runtime="openvino"`, '
        "`performance`: quantizers on the inputs of OpenVINO's INT8 layers) by rule and "
        "measured (timed in OpenVINO at one (batch, threads), one model per setting), timed on "
        "OpenVINO; the rule model is also timed on OpenVINO (the same "
        "QDQ file loads there). Peers: ORT `quant_pre_process` + `quantize_static` (QDQ, "
        "per-channel, MinMax, activations uint8 / weights int8, reader batches of 8); NNCF "
        "`nncf.quantize` on its ONNX backend (`performance`, and `mixed` where calibench mixed "
        "runs), `subset_size` = all samples, one sample per item, telemetry off (`NNCF_CI=1`), "
        "its model timed on ORT and on OpenVINO. A row whose feature this calibench lacks says "
        "*not available* and carries no figure.",
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
        "runs FP32 layers in bf16 on AMX CPUs), input reshaped to the static batch.",
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
        lines += _model_table(name, model, cpu)
    lines += _targets_section(results.get("targets", []), cpu)
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
