"""The conditions line beside every speed figure, and the warning on CPUs without INT8 dot
products."""

from __future__ import annotations

import pytest

from calibench.runtime.backend import Runtime
from calibench.runtime.conditions import MeasuredOn, cpu_name, int8_warning, with_conditions
from calibench.runtime.isa import CpuInfo, parse_cpuinfo

EPYC_VNNI = CpuInfo(
    "AMD EPYC 9B14 96-Core Processor", "x86_64", frozenset({"avx512_vnni", "avx512bw", "avx2"})
)
EPYC_AVX2 = CpuInfo("AMD EPYC 7B12 64-Core Processor", "x86_64", frozenset({"avx2"}))
XEON_AMX = parse_cpuinfo(
    "model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
    "flags\t: avx2 avx512bw avx512_vnni amx_int8\n",
    "x86_64",
)


def test_the_line_names_settings_runtime_cpu_and_its_int8_feature() -> None:
    line = MeasuredOn(Runtime.ONNXRUNTIME, batch=1, threads=1, cpu=EPYC_VNNI).describe()
    assert line == "batch 1, 1 thread, ONNX Runtime, AMD EPYC 9B14: AVX512-VNNI"
    line = MeasuredOn(Runtime.OPENVINO, batch=8, threads=2, streams=2, cpu=XEON_AMX).describe()
    assert line == "batch 8, 2 threads, 2 streams, OpenVINO, Intel Xeon Platinum 8481C: AMX-INT8"
    assert cpu_name(EPYC_AVX2) == "AMD EPYC 7B12"


def test_a_speed_figure_carries_the_conditions() -> None:
    data = MeasuredOn(Runtime.ONNXRUNTIME, 1, 1, cpu=EPYC_VNNI).to_dict()
    assert with_conditions("1.92× faster", data) == (
        "1.92× faster (batch 1, 1 thread, ONNX Runtime, AMD EPYC 9B14: AVX512-VNNI)"
    )
    assert with_conditions("1.15× slower", data).startswith("1.15× slower (batch 1")
    assert with_conditions("2.00× faster", None) == "2.00× faster"


def test_no_dot_product_gets_a_warning_and_vnni_none() -> None:
    assert int8_warning(EPYC_VNNI) is None and int8_warning(XEON_AMX) is None
    warning = int8_warning(EPYC_AVX2)
    assert warning is not None and "AVX2 (no VNNI)" in warning and "slower than FP32" in warning
    data = MeasuredOn(Runtime.OPENVINO, 1, 1, cpu=EPYC_AVX2).to_dict()
    assert data["warning"] == warning and data["isa"] == "avx2"
    assert data["text"].endswith("OpenVINO, AMD EPYC 7B12: AVX2 (no VNNI)")


@pytest.mark.parametrize(
    ("flags", "feature", "warned"),
    [
        ("avx2", "AVX2 (no VNNI)", True),
        ("avx2 avx512bw", "AVX-512BW (no VNNI)", True),
        ("avx2 avx_vnni", "AVX-VNNI", False),
    ],
)
def test_the_cpu_flags_override_applies(
    monkeypatch: pytest.MonkeyPatch, flags: str, feature: str, warned: bool
) -> None:
    monkeypatch.setenv("CALIBENCH_CPU_FLAGS", flags)
    data = MeasuredOn(Runtime.ONNXRUNTIME, 1, 1).to_dict()
    assert data["int8_feature"] == feature
    assert (data["warning"] is not None) is warned
