"""Which INT8 instructions the CPU has, and whether ONNX Runtime's integer kernels are exact there.

The same INT8 model computes different numbers on different x86 CPUs. With VNNI (AVX512-VNNI or
AVX-VNNI) or AMX, a u8×s8 dot product accumulates in 32 bits: exact. Without it (AVX2, or
AVX-512BW without VNNI), ONNX Runtime's u8×s8 GEMM uses ``vpmaddubsw``, which adds each pair of
adjacent products into a *saturating* 16-bit sum: 255·127 + 255·127 = 64 770 does not fit in
32 767. Conv (except depthwise), Gemm and MatMul go through that GEMM; u8×u8 GEMMs and the
depthwise kernel widen to 16 bits first and stay exact (checked against the real kernels under
an emulated AVX2 CPU, see ``saturation_test``). ARM's dot-product instructions are exact too.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from calibench.errors import ConfigError

CPUINFO = Path("/proc/cpuinfo")


class Isa(str, Enum):
    """An ISA class: what decides how INT8 kernels compute on a CPU."""

    AMX = "amx"
    """Intel AMX (and VNNI): exact."""
    VNNI = "vnni"
    """AVX512-VNNI or AVX-VNNI: exact."""
    AVX512 = "avx512"
    """AVX-512BW without VNNI: u8×s8 pairs saturate in 16 bits."""
    AVX2 = "avx2"
    """AVX2 without VNNI: u8×s8 pairs saturate in 16 bits."""
    ARM_DOT = "arm-dot"
    """ARM with the dot-product extension: exact."""
    ARM = "arm"
    """ARM without it: widening multiplies, exact."""
    OTHER = "other"
    """Anything else (an x86 CPU without AVX2): treated as saturating, to be safe."""

    @property
    def saturates(self) -> bool:
        """Whether ORT's u8×s8 GEMM can saturate (and calibench must avoid it)."""
        return self in (Isa.AVX512, Isa.AVX2, Isa.OTHER)

    @property
    def advice(self) -> str:
        """The ``--isa`` value to recalibrate for a CPU of this class."""
        return self.value if self is not Isa.OTHER else Isa.AVX2.value

    @property
    def label(self) -> str:
        return {
            Isa.AMX: "AMX",
            Isa.VNNI: "VNNI",
            Isa.AVX512: "AVX-512 without VNNI",
            Isa.AVX2: "AVX2 without VNNI",
            Isa.ARM_DOT: "ARM dot product",
            Isa.ARM: "ARM without dot product",
            Isa.OTHER: "a CPU without AVX2 or of unknown INT8 features",
        }[self]

    @classmethod
    def parse(cls, text: str) -> Isa:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(i.value for i in cls if i is not Isa.OTHER)
            raise ConfigError(f"unknown ISA {text!r}; choose one of: auto, {choices}") from None


ISA_CHOICES = ["auto", "amx", "vnni", "avx512", "avx2", "arm-dot", "arm"]
"""What ``--isa`` accepts."""

INT8_FLAGS = (
    "amx_int8",
    "avx512_vnni",
    "avx_vnni",
    "avx512bw",
    "avx2",
    "asimddp",
    "i8mm",
)
"""The /proc/cpuinfo flags that matter for INT8, in the order they are shown."""

FLAG_LABELS = {
    "amx_int8": "AMX-INT8",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512bw": "AVX-512BW",
    "avx2": "AVX2",
    "asimddp": "ARM dot product",
    "i8mm": "ARM I8MM",
}


@dataclass(frozen=True)
class CpuInfo:
    model: str
    machine: str
    flags: frozenset[str]
    """Only the INT8-relevant flags (``INT8_FLAGS``)."""

    @property
    def isa(self) -> Isa:
        return classify(self.machine, self.flags)

    def describe(self) -> str:
        shown = ", ".join(FLAG_LABELS[f] for f in INT8_FLAGS if f in self.flags) or "none"
        return f"{self.model} ({self.machine}; INT8 flags: {shown})"

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "machine": self.machine,
            "flags": [f for f in INT8_FLAGS if f in self.flags],
            "isa": self.isa.value,
            "exact_int8": not self.isa.saturates,
        }


def classify(machine: str, flags: frozenset[str] | set[str]) -> Isa:
    arch = machine.lower()
    if arch in ("aarch64", "arm64") or arch.startswith("arm"):
        return Isa.ARM_DOT if "asimddp" in flags else Isa.ARM
    if "amx_int8" in flags:
        return Isa.AMX
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return Isa.VNNI
    if "avx512bw" in flags:
        return Isa.AVX512
    if "avx2" in flags:
        return Isa.AVX2
    return Isa.OTHER


def parse_cpuinfo(text: str, machine: str) -> CpuInfo:
    """Read the first processor's model name and flags (x86 ``flags``, ARM ``Features``)."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return CpuInfo(model or "unknown CPU", machine, frozenset(flags & set(INT8_FLAGS)))


HOST_FLAGS_ENV = "CALIBENCH_CPU_FLAGS"
"""Overrides the INT8 flags read from /proc/cpuinfo (space-separated, e.g. ``avx2``): for a VM
whose CPUID hides or invents features, and for tests."""


def host_cpu() -> CpuInfo:
    """This machine's CPU. Without /proc/cpuinfo (not Linux) the class is only a guess from the
    architecture: ARM is taken as exact, anything else as saturating."""
    machine = platform.machine() or "unknown"
    override = os.environ.get(HOST_FLAGS_ENV)
    if override is not None:
        flags = frozenset(override.split()) & set(INT8_FLAGS)
        return CpuInfo(f"CPU with flags from ${HOST_FLAGS_ENV}", machine, flags)
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return CpuInfo(platform.processor() or "unknown CPU", machine, frozenset())
    return parse_cpuinfo(text, machine)


def isa_of_model(metadata: dict[str, str], producer: str) -> str | None:
    """The ISA class a model was made for: recorded by calibench since it knows ISAs; models
    calibench made before that are plain u8×s8 models, that is VNNI-only."""
    if "calibench.isa" in metadata:
        return metadata["calibench.isa"]
    return Isa.VNNI.value if producer == "calibench" else None


def resolve_isa(requested: str | Isa | None) -> tuple[Isa, bool]:
    """The ISA class to calibrate for, and whether it was detected (True) or given (False)."""
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        return host_cpu().isa, True
    return (requested if isinstance(requested, Isa) else Isa.parse(requested)), False


def mismatch_warning(model_isa: str | None, host: Isa) -> str | None:
    """What to tell a user who runs a model calibrated for one ISA class on another."""
    if model_isa is None:
        return None
    try:
        calibrated = Isa(model_isa)
    except ValueError:
        return None
    if host.saturates and not calibrated.saturates:
        return (
            f"this model was calibrated for {calibrated.label}; this CPU has {host.label}: "
            "ONNX Runtime's INT8 kernels can saturate here and lose accuracy — recalibrate "
            f"with --isa {host.advice}"
        )
    return None
