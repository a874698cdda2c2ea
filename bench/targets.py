"""The bench's targets, judged from ``results.json`` alone: the first comparison's (speed-up
against the best peer, accuracy drop against NNCF, calibration time against ORT, memory) and
issue 13's (:mod:`bench.placement_targets`). A target is met, missed, or not measured
(``met`` None), never guessed.
"""

from __future__ import annotations

from typing import Any

from bench.placement_targets import placement_targets

RUNTIME = {"ort": "ORT", "openvino": "OpenVINO"}
CONFIG_LABEL = {"b1t1": "batch 1, 1 thread", "b8t2": "batch 8, 2 threads"}
SPEEDUP_TIE = 0.02
MEMORY_TARGET = 1.2
DROP_LIMIT = 1.0
PRESETS = ("performance", "mixed")


def process_peak(run: dict[str, Any]) -> float:
    """The whole process's peak: imports and model load, or calibration, whichever is higher."""
    return float(max(run.get("rss_import_peak_mb", 0.0), run["rss_peak_mb"]))


def family(variant: dict[str, Any]) -> str:
    """``calibench``, ``peer`` or ``fp32`` (results written before the field: from the key)."""
    if "family" in variant:
        return str(variant["family"])
    quantizer = variant.get("quantizer") or ""
    return "fp32" if not quantizer else "calibench" if quantizer.startswith("calibench") else "peer"


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
    out += placement_targets(results)
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
        ours = {k: _latency(v, config) for k, v in variants.items()
                if family(v) == "calibench"}  # fmt: skip
        peers = {k: _latency(v, config) for k, v in variants.items()
                 if family(v) == "peer"}  # fmt: skip
        ours_ok = {k: v for k, v in ours.items() if v}
        peers_ok = {k: v for k, v in peers.items() if v}
        if not ours_ok or not peers_ok:
            out.append({"target": f"INT8 speed-up ≥ best peer's ({CONFIG_LABEL[config]})",
                        "model": name, "met": None, "figures": "not measured"})  # fmt: skip
            continue
        best_ours = max(ours_ok, key=lambda k: ours_ok[k]["speedup"])
        best_peer = max(peers_ok, key=lambda k: peers_ok[k]["speedup"])
        a, b = ours_ok[best_ours]["speedup"], peers_ok[best_peer]["speedup"]
        fastest = min(peers_ok, key=lambda k: peers_ok[k]["median_ms"])
        on_ort = [k for k in peers_ok if k.endswith("@ort")]
        best_ort = max(on_ort, key=lambda k: peers_ok[k]["speedup"]) if on_ort else None
        figures = (
            ", ".join(f"{_label(k)} ×{v['speedup']:.2f}" for k, v in ours_ok.items())
            + f" vs best peer {_label(best_peer)} ×{b:.2f}"
            + (" (over OpenVINO FP32)" if best_peer.endswith("@openvino") else "")
            + f"; gap {100 * (a / b - 1):+.1f}%"
            + (
                f" (best peer on ORT: {_label(best_ort)} ×{peers_ok[best_ort]['speedup']:.2f})."
                if best_ort and best_ort != best_peer
                else "."
            )
            + f" Absolute: {_label(best_ours)} {ours_ok[best_ours]['median_ms']:.3g} ms, "
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
    names = {"calibench-performance": "calibench rule (performance)", "calibench-mixed":
             "calibench rule (mixed)", "calibench-measured-b1t1": "calibench measured for b1·1t",
             "calibench-measured-b8t2": "calibench measured for b8·2t", "calibench-openvino":
             "calibench OpenVINO rule", "calibench-openvino-measured-b1t1":
             "calibench OpenVINO measured for b1·1t", "calibench-openvino-measured-b8t2":
             "calibench OpenVINO measured for b8·2t", "ort": "ORT quantize_static",
             "nncf-performance": "NNCF performance", "nncf-mixed": "NNCF mixed",
             "fp32": "FP32"}  # fmt: skip
    return f"{names.get(quantizer, quantizer)} on {RUNTIME.get(runtime, runtime)}"


def _quality_targets(name: str, variants: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    out = []
    for preset in PRESETS:
        ours = f"calibench-{preset}"
        if f"{ours}@ort" not in variants:
            continue  # the mixed rows are kept on some models only
        mine = variants[f"{ours}@ort"].get("quality")
        theirs = {
            k: variants[k]["quality"]["drop_pts"]
            for k in (f"nncf-{preset}@ort", f"nncf-{preset}@openvino")
            if "quality" in variants.get(k, {})
        }
        target = f"accuracy drop ≤ NNCF {preset}'s and < {DROP_LIMIT:g} point ({preset})"
        if not mine:
            out.append({"target": target, "model": name, "met": None,
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
    for preset in PRESETS:
        ours = f"calibench-{preset}"
        if ours not in calibrations:
            continue
        mine = calibrations[ours]
        target = f"calibration time ≤ ORT's ({preset})"
        if "seconds" not in mine or "seconds" not in peer:
            out.append({"target": target, "model": name, "met": None,
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
