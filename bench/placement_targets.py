"""Issue 13's targets (speed-aware placement, OpenVINO), judged from ``results.json``.

Every target names the CPU and its ISA class beside its figures: INT8 speed-ups depend on the
class (VNNI, AVX2 without VNNI, AMX) far more than on the model. A target that could not be
judged here says why (``met`` None) instead of borrowing a figure: the AVX2-only target needs an
AVX2-only CPU, and timing an emulated one measures the emulator, not the kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from typing import Any

SETTINGS = {"b1t1": "batch 1, 1 thread", "b8t2": "batch 8, 2 threads"}
SPEEDUP_FLOORS = {"fashion": 1.9, "mobilenet_v2": 2.0}
"""On ORT at batch 1, 1 thread, on a VNNI CPU: calibench's speed-up over FP32 at least this."""
FAST_INT8 = frozenset({"vnni", "amx"})
AVX2_OVER_ORT = 1.15
"""On an AVX2-only CPU: calibench's speed-up at least this times ORT quantize_static's."""
PLACEMENT_SHARE = 0.30
"""Placement timing at most this share of MobileNetV2's calibration time."""
RULE = "calibench-performance"
TIE = 0.02
"""A latency difference under this share is within the bench's timing noise (said, not hidden:
the target is still judged on the figures)."""
NNCF = ("nncf-performance", "nncf-mixed")


def _median(variant: dict[str, Any] | None, setting: str) -> dict[str, Any] | None:
    entry = (variant or {}).get("latency", {}).get(setting)
    return entry if entry and "median_ms" in entry else None


def _cpu(results: dict[str, Any]) -> str:
    machine = results["meta"]["machine"]
    return f"{machine.get('cpu', '?')}, {machine.get('isa_label', 'ISA class not recorded')}"


def _target(
    target: str, model: str, setting: str, cpu: str, met: bool | None, figures: str
) -> dict[str, Any]:
    return {"target": target, "model": model, "setting": setting, "cpu": cpu, "met": met,
            "figures": figures, "issue": 13}  # fmt: skip


def _calibench_on_ort(
    variants: dict[str, Any], setting: str
) -> tuple[str, dict[str, Any]] | tuple[None, None]:
    """The model calibench makes by default for ``setting`` on ORT: the measured placement's,
    or the rule's where measured placement could not run (then the figures say so)."""
    for key in (f"calibench-measured-{setting}@ort", f"{RULE}@ort"):
        entry = _median(variants.get(key), setting)
        if entry:
            return key, entry
    return None, None


def _name(variants: dict[str, Any], key: str) -> str:
    variant = variants[key]
    runtime = {"ort": "ORT", "openvino": "OpenVINO"}.get(variant["runtime"], variant["runtime"])
    return f"{variant['label']} on {runtime}"


def _fallback_note(variants: dict[str, Any], key: str, setting: str) -> str:
    measured = variants.get(f"calibench-measured-{setting}@ort")
    if key.startswith("calibench-measured") or measured is None:
        return ""
    why = measured.get("error") or "not timed"
    return f" (measured placement: {why}; the rule model is judged)"


def _speedup_floor(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    isa = results["meta"]["machine"].get("isa")
    for model, floor in SPEEDUP_FLOORS.items():
        if model not in results["models"]:
            continue
        target = f"ORT speed-up ≥ ×{floor:g} on a VNNI CPU"
        variants = results["models"][model]["variants"]
        if isa not in FAST_INT8:
            yield _target(target, model, "b1t1", cpu, None,
                          f"not applicable: this CPU's class is {isa}, not VNNI")  # fmt: skip
            continue
        key, entry = _calibench_on_ort(variants, "b1t1")
        if key is None or entry is None:
            yield _target(target, model, "b1t1", cpu, None, "calibench's model was not timed")
            continue
        speedup = entry["speedup"]
        rule = _median(variants.get(f"{RULE}@ort"), "b1t1")
        figures = f"{_name(variants, key)} ×{speedup:.2f}" + (
            f" (rule ×{rule['speedup']:.2f})" if rule and key != f"{RULE}@ort" else ""
        )
        figures += f" vs ×{floor:g}" + _fallback_note(variants, key, "b1t1")
        if speedup < floor:
            figures += f": missed by ×{floor - speedup:.2f} ({100 * (speedup / floor - 1):+.1f}%)"
        yield _target(target, model, "b1t1", cpu, speedup >= floor, figures)


def _avx2_only(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    isa = results["meta"]["machine"].get("isa")
    target = f"on an AVX2-only CPU: speed-up ≥ {AVX2_OVER_ORT:g}× ORT quantize_static's"
    for model in SPEEDUP_FLOORS:
        if model not in results["models"]:
            continue
        if isa != "avx2":
            yield _target(target, model, "b1t1", cpu, None, (
                f"not measured here: this CPU's class is {isa}. An AVX2-only CPU cannot be "
                "timed on this machine: under qemu the emulator is timed, not ORT's AVX2 "
                "kernels, and CALIBENCH_CPU_FLAGS=avx2 only changes what calibench assumes "
                "(its placement and overflow-safe scheme), while the timed kernels stay VNNI"
            ))  # fmt: skip
            continue
        variants = results["models"][model]["variants"]
        key, entry = _calibench_on_ort(variants, "b1t1")
        peer = _median(variants.get("ort@ort"), "b1t1")
        if key is None or entry is None or peer is None:
            yield _target(target, model, "b1t1", cpu, None, "a model was not timed")
            continue
        ratio = entry["speedup"] / peer["speedup"]
        yield _target(target, model, "b1t1", cpu, ratio >= AVX2_OVER_ORT, (
            f"{_name(variants, key)} ×{entry['speedup']:.2f} vs ORT quantize_static "
            f"×{peer['speedup']:.2f}: ×{ratio:.2f} of ORT's (target ×{AVX2_OVER_ORT:g})"
        ))  # fmt: skip


def _efficientnet(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    model = "efficientnet_lite0"
    if model not in results["models"]:
        return
    variants = results["models"][model]["variants"]
    for setting in SETTINGS:
        target = "ORT speed-up ≥ ORT quantize_static's"
        key, entry = _calibench_on_ort(variants, setting)
        peer = _median(variants.get("ort@ort"), setting)
        if key is None or entry is None or peer is None:
            yield _target(target, model, setting, cpu, None, "a model was not timed")
            continue
        a, b = entry["speedup"], peer["speedup"]
        figures = (
            f"{_name(variants, key)} ×{a:.2f} vs ORT quantize_static ×{b:.2f}"
            + _fallback_note(variants, key, setting)
            + ("" if a >= b else f": missed by {100 * (1 - a / b):.1f}%")
        )
        yield _target(target, model, setting, cpu, a >= b, figures)


def _measured_vs_rule(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    # On OpenVINO (rows of a bench that has them): its placement timed there against its rule.
    pairs = (("", "calibench-measured-{}@ort", f"{RULE}@ort"),
             (" (OpenVINO)", "calibench-openvino-measured-{}@openvino",
              "calibench-openvino@openvino"))  # fmt: skip
    for model, data in results["models"].items():
        variants = data["variants"]
        for (runtime, measured_key, rule_key), setting in product(pairs, SETTINGS):
            target = "measured placement never slower than the rule" + runtime
            key = measured_key.format(setting)
            if runtime and key not in variants:
                continue
            measured, rule = (
                _median(variants.get(key), setting),
                _median(variants.get(rule_key), setting),
            )
            if measured is None or rule is None:
                why = (variants.get(key) or {}).get("error") or "not timed"
                yield _target(target, model, setting, cpu, None, f"measured model: {why}")
                continue
            ratio = measured["median_ms"] / rule["median_ms"]
            figures = (
                f"measured {measured['median_ms']:.3g} ms (×{measured['speedup']:.2f}) vs rule "
                f"{rule['median_ms']:.3g} ms (×{rule['speedup']:.2f}): "
                + (
                    f"{100 * (1 - ratio):.1f}% faster"
                    if ratio <= 1
                    else f"missed: {100 * (ratio - 1):.1f}% slower"
                )
            )
            calib = data["calibrations"].get(key.partition("@")[0], {})
            if calib.get("same_graph_as_rule"):
                figures += "; the same graph as the rule model's, so the difference is noise"
            notes = calib.get("notes")
            if notes:
                figures += f" ({'; '.join(notes)[:300]})"
            yield _target(target, model, setting, cpu, ratio <= 1, figures)


def _openvino(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    target = "on OpenVINO: calibench at least as fast as NNCF"
    for model, data in results["models"].items():
        variants = data["variants"]
        for setting in SETTINGS:
            ours = {k: e for k, v in variants.items() if v["runtime"] == "openvino"
                    and v.get("family") == "calibench" and (e := _median(v, setting))}  # fmt: skip
            theirs = {f"{q}@openvino": e for q in NNCF
                      if (e := _median(variants.get(f"{q}@openvino"), setting))}  # fmt: skip
            if not ours or not theirs:
                yield _target(target, model, setting, cpu, None,
                              "calibench's or NNCF's model was not timed on OpenVINO")  # fmt: skip
                continue
            best = min(ours, key=lambda k: ours[k]["median_ms"])
            peer = min(theirs, key=lambda k: theirs[k]["median_ms"])
            a, b = ours[best]["median_ms"], theirs[peer]["median_ms"]
            figures = (
                f"{_name(variants, best)} {a:.3g} ms (×{ours[best]['speedup']:.2f}) vs "
                f"{_name(variants, peer)} {b:.3g} ms (×{theirs[peer]['speedup']:.2f})"
                + ("" if a <= b else f": missed, {100 * (a / b - 1):.1f}% slower")
                + (f" (within {TIE:.0%}: a tie within noise)" if abs(a / b - 1) < TIE else "")
            )
            yield _target(target, model, setting, cpu, a <= b, figures)


def _placement_share(results: dict[str, Any], cpu: str) -> Iterator[dict[str, Any]]:
    model = "mobilenet_v2"
    if model not in results["models"]:
        return
    target = f"placement timing ≤ {PLACEMENT_SHARE:.0%} of calibration time"
    calibrations = results["models"][model]["calibrations"]
    for setting in SETTINGS:
        calib = calibrations.get(f"calibench-measured-{setting}", {})
        stages = calib.get("stages") or {}
        placement = {k: v for k, v in stages.items() if "placement" in k or "timing" in k}
        if "seconds" not in calib or not placement:
            why = calib.get("error") or "no placement stage in the calibration's stage seconds"
            yield _target(target, model, setting, cpu, None, why)
            continue
        spent = sum(placement.values())
        share = spent / calib["seconds"]
        figures = (
            f"{', '.join(f'{k} {v:.2f} s' for k, v in placement.items())} of "
            f"{calib['seconds']:.2f} s: {share:.0%}"
            + (
                ""
                if share <= PLACEMENT_SHARE
                else f": missed by {100 * (share - PLACEMENT_SHARE):.0f} points"
            )
        )
        yield _target(target, model, setting, cpu, share <= PLACEMENT_SHARE, figures)


def placement_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's targets, in its order, each per model and timing setting."""
    cpu = _cpu(results)
    out: list[dict[str, Any]] = []
    for judge in (_speedup_floor, _avx2_only, _efficientnet, _measured_vs_rule, _openvino,
                  _placement_share):  # fmt: skip
        out += judge(results, cpu)
    return out
