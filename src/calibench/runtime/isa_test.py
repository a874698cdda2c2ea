from __future__ import annotations

import pytest

from calibench.errors import ConfigError
from calibench.runtime.isa import Isa, classify, host_cpu, mismatch_warning, parse_cpuinfo

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
"""
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C
flags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni avx_vnni amx_tile amx_int8 amx_bf16
"""
SKYLAKE = "model name\t: Intel Xeon Gold 6148\nflags\t: avx2 avx512f avx512bw avx512dq\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 asimddp i8mm\n"


@pytest.mark.parametrize(
    ("text", "machine", "isa", "saturates"),
    [
        (EPYC_AVX2, "x86_64", Isa.AVX2, True),
        (XEON_AMX, "x86_64", Isa.AMX, False),
        (SKYLAKE, "x86_64", Isa.AVX512, True),
        (GRAVITON, "aarch64", Isa.ARM_DOT, False),
        ("flags\t: sse sse2 sse4_1\n", "x86_64", Isa.OTHER, True),
    ],
)
def test_cpuinfo_gives_the_isa_class(text: str, machine: str, isa: Isa, saturates: bool) -> None:
    cpu = parse_cpuinfo(text, machine)
    assert cpu.isa is isa
    assert cpu.isa.saturates is saturates
    assert cpu.to_dict()["exact_int8"] is not saturates


def test_cpu_description_names_the_int8_flags() -> None:
    cpu = parse_cpuinfo(XEON_AMX, "x86_64")
    assert cpu.model.startswith("Intel(R) Xeon(R)")
    assert "AMX-INT8" in cpu.describe() and "AVX512-VNNI" in cpu.describe()
    assert "flags: AVX2)" in parse_cpuinfo(EPYC_AVX2, "x86_64").describe()


def test_vnni_without_avx512_is_exact() -> None:
    assert classify("x86_64", {"avx2", "avx_vnni"}) is Isa.VNNI
    assert classify("arm64", set()) is Isa.ARM


def test_isa_names_are_checked() -> None:
    assert Isa.parse("AVX2") is Isa.AVX2
    with pytest.raises(ConfigError, match="unknown ISA 'sse9'; choose one of: auto, amx"):
        Isa.parse("sse9")


def test_flags_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALIBENCH_CPU_FLAGS", "avx2 fma")
    assert host_cpu().isa is Isa.AVX2
    monkeypatch.setenv("CALIBENCH_CPU_FLAGS", "avx2 avx512_vnni")
    assert host_cpu().isa is Isa.VNNI


def test_running_a_vnni_model_on_avx2_is_warned() -> None:
    warning = mismatch_warning("vnni", Isa.AVX2)
    assert warning is not None
    assert "calibrated for VNNI" in warning and "recalibrate with --isa avx2" in warning
    assert mismatch_warning("avx2", Isa.VNNI) is None  # safe everywhere
    assert mismatch_warning("vnni", Isa.AMX) is None
    assert mismatch_warning(None, Isa.AVX2) is None
