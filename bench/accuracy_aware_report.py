"""The figures of :mod:`bench.accuracy_aware` summarised per case, and ``ACCURACY_AWARE.md``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import onnx

from bench.accuracy_aware_cases import EPSILON_PTS, SUBSET, load_npz


def count_ops(path: Path, op: str) -> int:
    return sum(n.op_type == op for n in onnx.load(str(path)).graph.node)


# --- report -----------------------------------------------------------------------------------


def _nncf_evaluations(run: dict[str, Any], n: int) -> dict[str, Any]:
    calls = run.get("calls", [])
    out: dict[str, Any] = {
        k: sum(c["kind"] == k for c in calls) for k in ("full", "ranking", "probe")
    }
    out["ranking_items"] = sorted({c["items"] for c in calls if c["kind"] == "ranking"})
    out["full_pass_equivalent"] = round(sum(c["items"] for c in calls) / n, 2)
    out["validation_fn_seconds"] = round(sum(c["seconds"] for c in calls), 2)
    fulls = [c["metric"] for c in calls if c["kind"] == "full"]
    out["fp32_metric"] = fulls[0] if fulls else None
    out["last_metric"] = fulls[-1] if fulls else None
    return out


def _calibench_evaluations(run: dict[str, Any], n: int) -> dict[str, Any]:
    aa = run.get("accuracy_aware") or {}
    ev = dict(aa.get("evaluations", {}))
    ranking_samples = max(8, min(64, n))
    ev["ranking_samples"] = ranking_samples
    ev["full_pass_equivalent"] = round(
        ev.get("full", 0) + ev.get("ranking", 0) * ranking_samples / n, 2
    )
    return ev


def _dq_nodes(variant: dict[str, Any]) -> int:
    if "dequantize_linear_nodes" not in variant:  # a record from before this field existed
        variant["dequantize_linear_nodes"] = count_ops(Path(variant["path"]), "DequantizeLinear")
    return int(variant["dequantize_linear_nodes"])


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The figures of the table and the targets, from one case's raw record."""
    case, runs, variants, timing = (result[k] for k in ("case", "runs", "variants", "timing"))
    n = len(load_npz(Path(case["validation"]))["labels"])
    rows: dict[str, dict[str, Any]] = {}
    full_int8 = {"calibench": "calibench-default", "nncf": "nncf-full"}
    for key, v in variants.items():
        row: dict[str, Any] = {
            "accuracy": v["accuracy_ort"], "drop": v["drop_ort"], "met": v["met_ort"],
            "int8_kernels": v["kernels_ort"]["int8"],
            "float_conv_gemm": v["kernels_ort"]["float_conv_gemm"],
            "dequantize_linear": _dq_nodes(v),
        }  # fmt: skip
        t = timing["ort"].get(key)
        if t:
            row["ort_ms"], row["ort_speedup"] = t["median_ms"], t.get("speedup", 1.0)
        t = timing["openvino"].get(key)
        if t:
            row["ov_ms"], row["ov_speedup"] = t["median_ms"], t.get("speedup", 1.0)
        if "kernels_openvino" in v:
            row["ov_int8"] = v["kernels_openvino"]["int8"]
            row["ov_float"] = v["kernels_openvino"]["float_conv_gemm"]
            row["accuracy_openvino"] = v["accuracy_openvino"]
        tool = key.split("-")[0]
        if key.endswith("-aa") and full_int8[tool] in variants:
            ref = variants[full_int8[tool]]
            row["extra_float_conv_gemm"] = (
                v["kernels_ort"]["float_conv_gemm"] - ref["kernels_ort"]["float_conv_gemm"]
            )
            row["removed_dequantize_linear"] = _dq_nodes(ref) - _dq_nodes(v)
        run = runs.get(key)
        if run and "error" not in run:
            row["wall_s"] = run["seconds"]
            row["rss_peak_mb"] = run["rss_peak_mb"]
            row["rss_delta_mb"] = run["rss_peak_mb"] - run["rss_baseline_mb"]
            row["foreign_cores"] = run["foreign_cores"]
        rows[key] = row
    ca, nn = runs["calibench-aa"], runs["nncf-aa"]
    if "error" not in ca:
        aa = ca["accuracy_aware"]
        rows["calibench-aa"]["reverted"] = len(aa["reverted"])
        rows["calibench-aa"]["evaluations"] = _calibench_evaluations(ca, n)
        rows["calibench-aa"]["own"] = {
            k: aa[k] for k in ("fp32", "default", "final", "drop", "met")
        }
    if "error" not in nn:
        rows["nncf-aa"]["reverted"] = nn["reverted_ops_logged"] or 0
        rows["nncf-aa"]["quantized_ops_logged"] = nn["quantized_ops_logged"]
        rows["nncf-aa"]["evaluations"] = _nncf_evaluations(nn, n)
    elif "progress" in nn:
        pr = nn["progress"]
        calls = pr["calls"]
        if calls:
            full = sum(c["kind"] == "full" for c in calls)
            ranking = sum(c["kind"] == "ranking" for c in calls)
            equivalent = sum(c["items"] for c in calls) / n
        else:  # a worker without the calls log: counted from NNCF's log instead
            full = 2 * (pr["initial_metric"] is not None) + len(pr["revert_steps"])
            ranking = sum(pr["ranking_rounds"])
            equivalent = full + ranking * min(SUBSET, n) / n
        rows["nncf-aa-stopped"] = {
            "error": nn["error"],
            "best_drop_pts": None if pr["best_drop"] is None else 100 * pr["best_drop"],
            "quantized_drop_pts": (
                None
                if pr["quantized_metric"] is None or pr["initial_metric"] is None
                else 100 * (pr["initial_metric"] - pr["quantized_metric"])
            ),
            "revert_steps": len(pr["revert_steps"]),
            "ranking_rounds": pr["ranking_rounds"],
            "ranking_round_seconds": pr.get("ranking_round_seconds", []),
            "steps": pr["revert_steps"],
            "step_backs": pr["step_backs"],
            "full": full,
            "ranking": ranking,
            "full_pass_equivalent": round(equivalent, 2),
            "counted_from": "validation_fn calls" if calls else "NNCF's log",
            "process_wall_s": nn["process_wall_s"],
            "foreign_cores": nn["foreign_cores"],
        }

    c, f = rows.get("calibench-aa", {}), rows.get("nncf-aa", {})
    targets: dict[str, Any] = {}
    if c and f:
        targets["drop"] = {
            "calibench_met": c["met"], "nncf_met": f["met"],
            "ok": c["met"] or not f["met"],
        }  # fmt: skip
        targets["wall"] = {"calibench_s": c.get("wall_s"), "nncf_s": f.get("wall_s"),
                           "ratio": c["wall_s"] / f["wall_s"],
                           "ok": c["wall_s"] <= f["wall_s"] / 2}  # fmt: skip
        targets["speedup_ort"] = {
            "calibench": c.get("ort_speedup"), "nncf": f.get("ort_speedup"),
            "ok": c.get("ort_speedup", 0) >= f.get("ort_speedup", 0),
        }  # fmt: skip
        targets["speedup_vs_nncf_on_openvino"] = {
            "calibench_ort": c.get("ort_speedup"), "nncf_openvino": f.get("ov_speedup"),
            "ok": c.get("ort_speedup", 0) >= f.get("ov_speedup", 0),
        }  # fmt: skip
    elif c:
        # NNCF returned no model: it did not meet the drop; its wall time is a lower bound.
        targets["nncf"] = {"error": nn.get("error")}
        targets["drop"] = {"calibench_met": c["met"], "nncf_met": False, "ok": True}
        targets["wall"] = {
            "calibench_s": c.get("wall_s"), "nncf_s_at_least": nn["process_wall_s"],
            "ok": c.get("wall_s", math.inf) <= nn["process_wall_s"] / 2,
        }  # fmt: skip
        targets["speedup_ort"] = {"ok": None, "why": "NNCF returned no model"}
    return {"rows": rows, "targets": targets, "validation_samples": n}


LABELS = {
    "fp32": "FP32",
    "calibench-default": "calibench Default",
    "calibench-aa": "**calibench AccuracyAware**",
    "nncf-full": "NNCF full INT8 (its step 1)",
    "nncf-aa": "**NNCF quantize_with_accuracy_control**",
}


def _f(value: Any, fmt: str = "{:.2f}", empty: str = "—") -> str:
    return empty if value is None else fmt.format(value)


def _case_md(result: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    case, rows, runs = result["case"], summary["rows"], result["runs"]
    n = summary["validation_samples"]
    out = [f"## {case['label']}", "", case["description"] + ".", ""]
    out.append(
        f"Max drop: **{case['max_drop']:g} points** of {case['quality']} "
        f"(calibench `max_drop={case['max_drop']:g}`; NNCF `max_drop={case['max_drop'] / 100:g}`, "
        f"`DropType.ABSOLUTE`, metric in [0, 1]); {n} validation samples."
    )
    out += [f"- {note}" for note in case["notes"]]
    if case["selection"]:
        out += ["", "Choice of the validation set: the first candidate, in the fixed order below, "
                "on which calibench Default misses the drop (shared accuracy function). On the "
                "first one (100 test images per class) Default is *more* accurate than FP32, so "
                "even a max drop of 0 would leave AccuracyAware nothing to do; bias-corrected "
                "INT8 and FP32 disagree on very few Fashion images, and whether Default "
                "\"misses\" 0.1 points on 1000 of them depends on which images are drawn:",
                ""]  # fmt: skip
        out += ["| candidate set | FP32 % | Default % | drop |", "|---|--:|--:|--:|"]
        out += [f"| {s['set']} | {s['fp32']:.1f} | {s['default']:.1f} | {s['drop']:+.1f} |"
                for s in case["selection"]]  # fmt: skip
    out += [
        "",
        "| model | accuracy % (drop) | max drop met | layers reverted | wall s | peak RSS MB "
        "(+during) | evaluations: full / ranking (full-pass equiv.) | ORT int8 kernels / float "
        "Conv+Gemm | ORT b1·1t ms (speed-up) | OpenVINO b1·1t ms (speed-up) | OV i8 / f32 conv |",
        "|---|--:|:-:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for key, label in LABELS.items():
        r = rows.get(key)
        stopped = rows.get("nncf-aa-stopped")
        if r is None and key == "nncf-aa" and stopped:
            best = stopped["best_drop_pts"]
            out.append(
                f"| {label} | **{stopped['error']}**; no model. Best drop reached "
                f"{_f(best, '{:.2f}')} (from {_f(stopped['quantized_drop_pts'], '{:.2f}')}) "
                f"after {stopped['revert_steps']} revert steps, {len(stopped['ranking_rounds'])} "
                f"ranking rounds of {stopped['ranking_rounds']} groups | no | — | "
                f">{stopped['process_wall_s']:.0f} (process) | — | {stopped['full']} / "
                f"{stopped['ranking']} on 300 so far ({stopped['full_pass_equivalent']}) |"
                + " |"
                * 4
            )
            continue
        if r is None:
            out.append(f"| {label} | failed: {runs.get(key, {}).get('error', 'no model')} |"
                       + " |" * 9)  # fmt: skip
            continue
        reverted = "—"
        if key == "calibench-aa" and "reverted" in r:
            reverted = (f"{r['reverted']} layer(s); −{r['removed_dequantize_linear']} "
                        f"DequantizeLinear, +{r['extra_float_conv_gemm']} float "
                        f"Conv/Gemm vs Default")  # fmt: skip
        elif key == "nncf-aa" and "reverted" in r:
            reverted = (
                f"{r['reverted']} of {r['quantized_ops_logged']} ops (log); "
                f"−{r['removed_dequantize_linear']} DequantizeLinear, "
                f"+{r['extra_float_conv_gemm']} float Conv/Gemm vs its full INT8"
            )
        ev = r.get("evaluations")
        if ev and key == "calibench-aa":
            evals = (
                f"{ev['full']} / {ev['ranking']} on {ev['ranking_samples']} "
                f"({ev['full_pass_equivalent']})"
            )
        elif ev:
            sizes = ",".join(str(s) for s in ev["ranking_items"]) or "—"
            evals = (f"{ev['full']} / {ev['ranking']} on {sizes} "
                     f"(+{ev['probe']} probe) ({ev['full_pass_equivalent']})")  # fmt: skip
        else:
            evals = "—"
        wall = _f(r.get("wall_s"), "{:.1f}")
        rss = (f"{r['rss_peak_mb']:.0f} (+{r['rss_delta_mb']:.0f})" if "rss_peak_mb" in r
               else "—")  # fmt: skip
        ort_t = f"{r['ort_ms']:.3g} (×{r['ort_speedup']:.2f})" if "ort_ms" in r else "—"
        ov_t = f"{r['ov_ms']:.3g} (×{r['ov_speedup']:.2f})" if "ov_ms" in r else "—"
        ov_k = f"{r['ov_int8']} / {r['ov_float']}" if "ov_int8" in r else "—"
        met = "—" if key == "fp32" else ("yes" if r["met"] else "**no**")
        out.append(
            f"| {label} | {r['accuracy']:.2f} ({r['drop']:+.2f}) | {met} | {reverted} | {wall} | "
            f"{rss} | {evals} | {r['int8_kernels']} / {r['float_conv_gemm']} | {ort_t} | {ov_t} "
            f"| {ov_k} |"
        )
    out.append("")
    c, f = rows.get("calibench-aa", {}), rows.get("nncf-aa", {})
    if "own" in c:
        own = c["own"]
        out.append(
            f"- calibench's own figures: FP32 {own['fp32']:.2f}, Default {own['default']:.2f}, "
            f"final {own['final']:.2f} (drop {own['drop']:.2f}, met: {own['met']}); reverted: "
            + ", ".join(f"`{k}`" for k in runs["calibench-aa"]["accuracy_aware"]["reverted"])
        )
    if "evaluations" in f:
        ev = f["evaluations"]
        out.append(
            f"- NNCF's own figures (its validation_fn): FP32 {_f(ev['fp32_metric'], '{:.4f}')}, "
            f"last full pass {_f(ev['last_metric'], '{:.4f}')}; "
            f"{ev['validation_fn_seconds']:.1f} s of its {f['wall_s']:.1f} s were spent inside "
            "validation_fn (ORT sessions + inference)."
        )
    stopped = rows.get("nncf-aa-stopped")
    if stopped:
        secs = stopped["ranking_round_seconds"]
        full_ort = rows.get("nncf-full", {}).get("ort_speedup")
        steps = ", ".join(
            f"`{st['op'].removeprefix('/features/')}` → {100 * st['drop_after']:.2f}"
            for st in stopped["steps"]
        )
        out.append(
            f"- NNCF when it was stopped: drop {_f(stopped['quantized_drop_pts'])} → best "
            f"{_f(stopped['best_drop_pts'])} points after {stopped['revert_steps']} revert steps; "
            f"{stopped['step_backs']} times a revert made the drop worse, was undone, and all "
            f"remaining groups were ranked again on {min(SUBSET, n)} samples. Its "
            f"{len(secs)} ranking rounds took {sum(secs)} s of the {stopped['process_wall_s']:.0f} "
            "s; each ranking evaluation builds an ORT session and runs the samples through a "
            f"model that ORT runs at ×{_f(full_ort)} FP32's speed (NNCF's fully quantized model "
            "above: ORT leaves most of its Q/DQ as float Conv plus conversions). Steps (op "
            f"reverted → drop after, points; evaluation counts from {stopped['counted_from']}): "
            + steps
        )
    if result.get("remeasured"):
        out.append(
            f"- Accuracy, kernels and timing of this case were measured again on "
            f"{result['remeasured']} with `--remeasure` (same models and data, no quantizer "
            "rerun), to add NNCF's fully quantized model from its `intermediate_model_dir` and "
            "because the first timing was disturbed by another process."
        )
    if "accuracy_openvino" in f:
        out.append(
            f"- Accuracy on OpenVINO (same data): FP32 {rows['fp32']['accuracy_openvino']:.2f}, "
            f"NNCF QwAC {f['accuracy_openvino']:.2f}, "
            f"NNCF full {_f(rows.get('nncf-full', {}).get('accuracy_openvino'))}, "
            f"calibench AA {_f(c.get('accuracy_openvino'))}."
        )
    t = summary["targets"]
    out += ["", "Targets:", ""]
    if "drop" in t and "nncf" not in t:
        d, w, s, so = t["drop"], t["wall"], t["speedup_ort"], t["speedup_vs_nncf_on_openvino"]
        out += [
            f"- meet the drop wherever NNCF meets it: **{'met' if d['ok'] else 'MISSED'}** "
            f"(calibench {'meets' if d['calibench_met'] else 'misses'}, NNCF "
            f"{'meets' if d['nncf_met'] else 'misses'}; shared measurement)",
            f"- wall time ≤ half of NNCF's: **{'met' if w['ok'] else 'MISSED'}** "
            f"({w['calibench_s']:.1f} s vs {w['nncf_s']:.1f} s, ratio {w['ratio']:.2f})",
            f"- speed-up ≥ NNCF's, both on ORT: **{'met' if s['ok'] else 'MISSED'}** "
            f"(×{s['calibench']:.2f} vs ×{s['nncf']:.2f})",
            f"- speed-up ≥ NNCF's on its own runtime (calibench on ORT vs NNCF on OpenVINO, each "
            f"over FP32 on the same runtime): **{'met' if so['ok'] else 'MISSED'}** "
            f"(×{so['calibench_ort']:.2f} vs ×{so['nncf_openvino']:.2f})",
        ]
    elif "wall" in t:
        d, w = t["drop"], t["wall"]
        out += [
            f"- NNCF did not finish ({t['nncf']['error']}) and returned no model.",
            f"- meet the drop wherever NNCF meets it: **met** (NNCF did not meet it within the "
            f"limit; calibench {'meets' if d['calibench_met'] else 'misses'} it)",
            f"- wall time ≤ half of NNCF's: **{'met' if w['ok'] else 'MISSED'}**, against a "
            f"lower bound ({_f(w['calibench_s'], '{:.1f}')} s vs more than "
            f"{w['nncf_s_at_least']:.0f} s)",
            "- speed-up ≥ NNCF's: **not comparable** (NNCF returned no model; its fully "
            "quantized starting point is in the table for reference)",
        ]
    else:
        out.append(f"- not comparable: {t.get('nncf', {}).get('error')}")
    tm = result["timing"]
    out += [
        "",
        f"Timing: {tm['ort']['rounds']} rounds (ORT), {tm['openvino']['rounds']} (OpenVINO); other "
        f"processes' load during timing {tm['ort']['foreign_cores']} / "
        f"{tm['openvino']['foreign_cores']} cores. Load during the quantizer runs (other "
        "processes' cores; load average before → after): "
        + "; ".join(
            f"{k} {r['foreign_cores']} ({r['loadavg_before'][:1]} → {r['loadavg_after'][:1]})"
            for k, r in runs.items()
        ),
        "",
    ]
    return out


def write_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    m, v = meta["machine"], meta["versions"]
    lines = [
        "# AccuracyAware: calibench vs NNCF quantize_with_accuracy_control",
        "",
        f"Generated by `python -m bench.accuracy_aware` on {meta['date']}; the run took "
        f"{meta['seconds'] / 60:.1f} min. Raw figures: `bench/accuracy_aware.json`.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']}, {m['cpus']} logical CPUs ({m['hypervisor'] or 'bare metal'}), "
        f"{m['memory_gb']} GB RAM; VNNI flags {', '.join(m['vnni_flags'])}",
        f"- Load average (1/5/15 min) at start {meta['loadavg_start']}, at end "
        f"{meta['loadavg_end']}. The machine is shared with another benchmark: every quantizer "
        "run and timing phase records the CPU other processes used meanwhile (cores).",
        f"- {m['os']}, Python {m['python']}",
        "- "
        + ", ".join(
            f"{k} {v[k]}" for k in ("calibench", "onnxruntime", "onnx", "nncf", "openvino", "numpy")
        )
        + f"; calibench git "
        f"{v['calibench_git']}, src digest `{v['calibench_src_sha256']}`",
        "",
        "## Method",
        "",
        f"- Same FP32 model, same {SUBSET} calibration samples (`.npz`, preprocessed), same "
        "validation samples and labels, same maximum drop for both tools. Each quantizer runs "
        "alone in a fresh subprocess; **wall** is the quantizer call itself (reading the data, "
        "calibrating, every validation, writing the model), not imports or loading the FP32 "
        "model; **peak RSS** is the process's high-water mark, `+during` = above the resident "
        "set just before the call.",
        '- calibench: `calibench.calibrate(model, calibration.npz, method="accuracy-aware", '
        "max_drop=D, validation=<the validation .npz imported with "
        "calibench.data.importer.import_dataset>, subset=300)`, default settings otherwise "
        "(performance preset, bias correction, all cores). Default = the same call without the "
        "method.",
        "- NNCF: `nncf.quantize_with_accuracy_control(onnx_model, nncf.Dataset(calibration, one "
        "sample per item), nncf.Dataset(validation), validation_fn, max_drop=D/100, "
        f"drop_type=DropType.ABSOLUTE, subset_size={SUBSET})` on its ONNX backend, telemetry "
        "off, defaults otherwise (performance preset; the ranking subset is `subset_size`). Its "
        "`validation_fn` builds an ONNX Runtime CPU session (all cores) for the model it is "
        "given and returns (top-1 fraction, 0/1 per item), i.e. NNCF's metric mode; it batches "
        "the items itself (50 for MobileNetV2, 250 for Fashion). Its fully quantized model "
        "(before any revert) is saved through `intermediate_model_dir` and shown as "
        '"NNCF full INT8".',
        f"- Both maximum drops are raised by {EPSILON_PTS:g} points (NNCF {EPSILON_PTS / 100:g}) "
        "so that a drop exactly at the limit is not rejected by floating-point rounding "
        "(1 − 0.98 = 0.020000000000000018 > 0.02).",
        "- **Accuracy** of every model is measured afterwards by one shared function (ONNX "
        "Runtime CPU, 2 threads, same data, same batches): these are the figures of the tables "
        'and of "met". Each tool\'s own figures are listed under its table.',
        "- **Layers reverted**: calibench's report (`accuracy_aware.reverted`); NNCF: its log "
        'line "N out of M were reverted". For both, the DequantizeLinear nodes removed and the '
        "float Conv/Gemm kernels ORT runs beyond the tool's own fully quantized model (calibench "
        "Default; NNCF's model before reverts). QuantizeLinear counts are not comparable: NNCF "
        "folds its weight quantizers into int8 initializers only in its final model.",
        "- NNCF's validation runs on ONNX Runtime, as asked: ORT runs NNCF's Q/DQ layout slowly "
        '(see the speed-up of "NNCF full INT8" on ORT), so each of NNCF\'s evaluations costs '
        "more than it would on OpenVINO, NNCF's own runtime. Its ranking subset is "
        "`subset_size`, i.e. all 300 validation samples for MobileNetV2.",
        '- **Evaluations**: calibench\'s `report.accuracy_aware["evaluations"]` (full passes '
        "on the validation set including FP32's, and ranking runs on its subset of at most 64 "
        "samples); NNCF: every call of `validation_fn`, classified by caller: full passes, "
        "calls from NNCF's ranker (on `subset_size` items), and the one-item probe NNCF makes to "
        "detect the mode. The full-pass equivalent is samples inferred / validation samples.",
        "- **Speed**: batch 1, one thread; FP32 and the INT8 models timed interleaved in one "
        "process (`bench/timing.py`: blocks of 10 runs, first 3 dropped, rotating order, medians) "
        "on ONNX Runtime (CPU EP) and on OpenVINO (CPU, f32 precision hint), speed-up over FP32 "
        "on the same runtime.",
        "",
    ]
    for name, result in results["cases"].items():
        if "error" in result:
            lines += [f"## {name}", "", f"Failed: {result['error']}", ""]
            continue
        lines += _case_md(result, results["summary"][name])
    return "\n".join(lines)
