"""The conditions a speed figure was measured in, said beside the figure.

"1.92× faster" means little alone: INT8 speed depends on the batch, the threads, the runtime and
above all the CPU's INT8 instructions. With VNNI or AMX one instruction computes a u8×s8 dot
product; on AVX2 (or AVX-512 without VNNI) it takes three, so INT8 gains little and can lose to
FP32. Every speed figure calibench shows (CLI, JSON, HTML report) carries this line:
``batch 1, 1 thread, ONNX Runtime, AMD EPYC: AVX512-VNNI``, and a warning on a CPU where INT8
cannot be fast. The CPU comes from :func:`~calibench.runtime.isa.host_cpu` (so
``$CALIBENCH_CPU_FLAGS`` overrides it, for tests and odd VMs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from calibench.runtime.backend import Runtime
from calibench.runtime.isa import FLAG_LABELS, INT8_FLAGS, CpuInfo, Isa, host_cpu

NO_DOT_PRODUCT = frozenset({Isa.AVX512, Isa.AVX2, Isa.ARM, Isa.OTHER})
"""ISA classes without an INT8 dot-product instruction."""
_NOISE = re.compile(r"\((R|TM|tm|r)\)|\bCPU\s*@.*$|@.*$|\b\d+-Core\b|\bProcessor\b")


def cpu_name(cpu: CpuInfo) -> str:
    """The CPU's model name without trademarks, core counts and clock: ``Intel Xeon Platinum
    8481C``, ``AMD EPYC 7B12``."""
    return " ".join(_NOISE.sub(" ", cpu.model).split()) or "unknown CPU"


def int8_feature(cpu: CpuInfo) -> str:
    """The strongest INT8 feature: ``AMX-INT8``, ``AVX512-VNNI``, ``AVX2 (no VNNI)``…"""
    best = next((f for f in INT8_FLAGS if f in cpu.flags), None)
    if best is None:
        return "no AVX2" if cpu.isa is Isa.OTHER else "no INT8 dot product"
    label = FLAG_LABELS[best]
    return f"{label} (no VNNI)" if best in ("avx2", "avx512bw") else label


def int8_warning(cpu: CpuInfo) -> str | None:
    """What to tell a user whose CPU cannot make INT8 fast (None when it can)."""
    if cpu.isa not in NO_DOT_PRODUCT:
        return None
    return (
        f"this CPU ({cpu_name(cpu)}: {int8_feature(cpu)}) has no INT8 dot-product instruction "
        "(VNNI, AMX or ARM dot product): INT8 gains little here and can be slower than FP32"
    )


@dataclass(frozen=True)
class MeasuredOn:
    """Where and how a speed figure was measured."""

    runtime: Runtime
    batch: int
    threads: int
    streams: int = 1
    cpu: CpuInfo | None = None
    """None: this machine's (read when the figure is made)."""

    def host(self) -> CpuInfo:
        return self.cpu if self.cpu is not None else host_cpu()

    def describe(self) -> str:
        """``batch 1, 1 thread, ONNX Runtime, AMD EPYC: AVX512-VNNI``."""
        cpu = self.host()
        parts = [f"batch {self.batch}", f"{self.threads} thread{'s' if self.threads != 1 else ''}"]
        if self.streams != 1:
            parts.append(f"{self.streams} streams")
        parts.append(self.runtime.label)
        parts.append(f"{cpu_name(cpu)}: {int8_feature(cpu)}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        cpu = self.host()
        return {
            "runtime": self.runtime.value,
            "batch": self.batch,
            "threads": self.threads,
            "streams": self.streams,
            "cpu": cpu_name(cpu),
            "isa": cpu.isa.value,
            "int8_feature": int8_feature(cpu),
            "text": self.describe(),
            "warning": int8_warning(cpu),
        }


def with_conditions(words: str, measured_on: dict[str, Any] | None) -> str:
    """A speed figure in words (``1.92× faster``) with the conditions it was measured in:
    ``1.92× faster (batch 1, 1 thread, ONNX Runtime, AMD EPYC: AVX512-VNNI)``; the conditions
    come from a :meth:`MeasuredOn.to_dict` (as stored in results)."""
    text = (measured_on or {}).get("text")
    return f"{words} ({text})" if text else words
