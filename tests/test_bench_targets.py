"""Issue 13's bench targets are judged from the results alone: met, missed by how much, or not
measured with the reason, never a borrowed figure (:mod:`bench.placement_targets`)."""

from __future__ import annotations

from typing import Any

from bench.placement_targets import placement_targets
from bench.report import _targets_section
from bench.targets import targets


def _variant(runtime: str, family: str, label: str, **ms: float) -> dict[str, Any]:
    fp32 = {"b1t1": 1.0, "b8t2": 4.0}
    return {
        "runtime": runtime, "family": family, "label": label, "quantizer": label,
        "configs": list(ms), "latency": {
            config: {"median_ms": value, "speedup": fp32[config] / value,
                     "speedup_vs_ort_fp32": fp32[config] / value}
            for config, value in ms.items()
        },
    }  # fmt: skip


def _results(isa: str = "vnni") -> dict[str, Any]:
    variants = {
        "fp32@ort": _variant("ort", "fp32", "FP32", b1t1=1.0, b8t2=4.0),
        "calibench-performance@ort": _variant("ort", "calibench", "rule", b1t1=0.55, b8t2=2.0),
        "calibench-measured-b1t1@ort": _variant("ort", "calibench", "measured", b1t1=0.5),
        "calibench-measured-b8t2@ort": _variant("ort", "calibench", "measured", b8t2=2.2),
        "ort@ort": _variant("ort", "peer", "ORT", b1t1=0.56, b8t2=2.0),
        "fp32@openvino": _variant("openvino", "fp32", "FP32", b1t1=1.0, b8t2=4.0),
        "calibench-openvino@openvino": _variant("openvino", "calibench", "ov", b1t1=0.4, b8t2=1.5),
        "nncf-performance@openvino": _variant("openvino", "peer", "NNCF", b1t1=0.45, b8t2=1.4),
    }
    calibrations = {
        "calibench-measured-b1t1": {"seconds": 10.0, "stages": {"statistics": 6.0,
                                                                "placement": 2.0}},
        "calibench-measured-b8t2": {"error": "not available: no placement=",
                                    "not_available": True},
    }  # fmt: skip
    return {
        "meta": {"machine": {"cpu": "Test CPU", "isa": isa, "isa_label": isa.upper()}},
        "models": {
            "fashion": {"variants": variants, "calibrations": {}, "quality_kind": "accuracy"},
            "mobilenet_v2": {
                "variants": variants,
                "calibrations": calibrations,
                "quality_kind": "agreement",
            },
        },
    }


def _find(judged: list[dict[str, Any]], start: str, model: str, setting: str) -> dict[str, Any]:
    (found,) = [
        t
        for t in judged
        if t["target"].startswith(start) and t["model"] == model and t["setting"] == setting
    ]
    return found


def test_each_target_met_missed_or_not_measured_with_its_figures() -> None:
    judged = placement_targets(_results())
    floor = _find(judged, "ORT speed-up ≥ ×1.9", "fashion", "b1t1")
    assert floor["met"] is True and "measured on ORT ×2.00 (rule ×1.82) vs ×1.9" in floor["figures"]
    assert floor["cpu"] == "Test CPU, VNNI"
    mobilenet = _find(judged, "ORT speed-up ≥ ×2", "mobilenet_v2", "b1t1")
    assert mobilenet["met"] is True
    slower = _find(judged, "measured placement never", "fashion", "b8t2")
    assert slower["met"] is False and "10.0% slower" in slower["figures"]
    assert _find(judged, "measured placement never", "fashion", "b1t1")["met"] is True
    openvino = _find(judged, "on OpenVINO", "fashion", "b8t2")
    assert openvino["met"] is False and "7.1% slower" in openvino["figures"]
    assert _find(judged, "on OpenVINO", "fashion", "b1t1")["met"] is True
    share = _find(judged, "placement timing", "mobilenet_v2", "b1t1")
    assert share["met"] is True and "20%" in share["figures"]
    missing = _find(judged, "placement timing", "mobilenet_v2", "b8t2")
    assert missing["met"] is None and "not available" in missing["figures"]
    avx2 = _find(judged, "on an AVX2-only CPU", "fashion", "b1t1")
    assert avx2["met"] is None and "not measured here" in avx2["figures"]


def test_the_vnni_floor_does_not_apply_to_an_avx2_cpu_where_the_avx2_target_does() -> None:
    judged = placement_targets(_results(isa="avx2"))
    assert _find(judged, "ORT speed-up ≥ ×1.9", "fashion", "b1t1")["met"] is None
    avx2 = _find(judged, "on an AVX2-only CPU", "fashion", "b1t1")
    # measured ×2.00 against ORT's ×1.79: ×1.12 of ORT's, under the ×1.15 asked
    assert avx2["met"] is False and "×1.12 of ORT's" in avx2["figures"]


def test_the_targets_section_renders_not_measured_rows() -> None:
    judged = [t for t in targets(_results()) if t.get("issue") == 13]
    section = "\n".join(_targets_section(judged, "Test CPU"))
    assert "### Issue 13: measured placement and OpenVINO" in section
    assert "| placement timing ≤ 30% of calibration time | mobilenet_v2 | b8·2t" in section
    assert "not measured" in section and "**missed**" in section


def test_openvino_measured_placement_is_judged_against_the_openvino_rule_model() -> None:
    results = _results()
    variants = dict(results["models"]["fashion"]["variants"])
    variants["calibench-openvino-measured-b1t1@openvino"] = _variant(
        "openvino", "calibench", "ov measured", b1t1=0.38
    )
    results["models"]["fashion"]["variants"] = variants
    judged = placement_targets(results)
    target = "measured placement never slower than the rule (OpenVINO)"
    on_ov = _find(judged, target, "fashion", "b1t1")
    assert on_ov["met"] is True and "measured 0.38 ms (×2.63) vs rule 0.4 ms" in on_ov["figures"]
    # a bench without OpenVINO measured rows judges nothing more
    assert not [t for t in judged if t["target"] == target and t["model"] == "mobilenet_v2"]
    assert _find(judged, "on OpenVINO", "fashion", "b1t1")["figures"].startswith("ov measured")
