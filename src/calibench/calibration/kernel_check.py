"""Never silently wrong: the INT8 model's integer kernels checked against its exact arithmetic.

After calibration the model is run twice on a few calibration samples: with ONNX Runtime's
integer kernels (as it will run) and with graph optimizations off (each DequantizeLinear → float
op → QuantizeLinear: the exact arithmetic the Q/DQ model describes). A gap means the kernels do
not compute what was calibrated: on a CPU without VNNI, saturation. When the model is made for
another ISA class than this CPU's and that class saturates, the kernel cannot be run here, so
its saturation is computed layer by layer with the kernel's numpy model instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx
import onnxruntime as ort

from calibench.calibration.bias_correction import output_sqnr
from calibench.calibration.overflow import measure_overflow
from calibench.config import Preset
from calibench.passes.placement import QuantPlan
from calibench.quant import QuantParams
from calibench.runtime.inputs import BatchReader, fit_reader
from calibench.runtime.isa import Isa, host_cpu
from calibench.runtime.session import make_session

SAMPLES = 8
GAP_DB = 30.0
MARGIN_DB = 3.0
"""The user is warned when the integer kernels' output strays from the exact arithmetic by more
than half the quantization noise itself: SQNR against exact below both the SQNR against FP32 +
3 dB and 30 dB. Exact kernels differ by rounding only (MobileNetV2: 25 dB against exact while
19 dB against FP32); saturating ones by far more (8.7 dB against exact)."""
LAYER_DB = 30.0
"""A layer's emulated saturation is named in a warning below this SQNR (its own output)."""


@dataclass
class KernelCheck:
    isa: str
    host_isa: str
    samples: int
    host_sqnr_db: float | None
    """Integer kernels vs exact arithmetic on this CPU (None: not measured)."""
    quantization_sqnr_db: float | None = None
    """Exact INT8 arithmetic vs FP32 on the same samples: the noise quantization itself adds."""
    saturating_layers: list[dict[str, Any]] = field(default_factory=list)
    """Layers whose kernel saturates on the target ISA for these samples (emulated or not)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "isa": self.isa,
            "host_isa": self.host_isa,
            "samples": self.samples,
            "integer_vs_exact_sqnr_db": None
            if self.host_sqnr_db is None or math.isinf(self.host_sqnr_db)
            else round(self.host_sqnr_db, 2),
            "exact_vs_fp32_sqnr_db": None
            if self.quantization_sqnr_db is None or math.isinf(self.quantization_sqnr_db)
            else round(self.quantization_sqnr_db, 2),
            "saturating_layers": self.saturating_layers,
            "warnings": self.warnings,
            "ok": self.ok,
        }


def check_kernels(
    int8: onnx.ModelProto,
    fp32: onnx.ModelProto,
    plan: QuantPlan,
    params: dict[str, QuantParams],
    ranges: dict[str, tuple[float, float]],
    preset: Preset,
    reader: BatchReader,
    indices: Sequence[int],
    isa: Isa,
    threads: int | None = None,
    memory_limit: int | None = None,
) -> KernelCheck:
    host = host_cpu().isa
    chosen = list(indices)[:SAMPLES]
    fast = make_session(int8, threads=threads, lean=True)
    reader = fit_reader(reader, chosen, lambda feeds: fast.run(None, feeds), memory_limit)
    batches = list(reader.batches(chosen))
    check = KernelCheck(isa.value, host.value, sum(len(i) for i, _ in batches), None)
    if not batches:
        return check
    exact = make_session(
        int8, threads=threads, optimization=ort.GraphOptimizationLevel.ORT_DISABLE_ALL, lean=True
    )
    reference = [exact.run(None, feeds) for _, feeds in batches]
    check.host_sqnr_db = output_sqnr(reference, [fast.run(None, feeds) for _, feeds in batches])
    float_model = make_session(fp32, threads=threads, lean=True)
    check.quantization_sqnr_db = output_sqnr(
        [float_model.run(None, feeds) for _, feeds in batches], reference
    )
    saturating = isa.saturates or host.saturates
    if saturating:
        found = measure_overflow(
            fp32,
            plan,
            params,
            ranges,
            preset,
            reader,
            chosen,
            threads=threads,
            candidates=False,
            memory_limit=memory_limit,
        )
        check.saturating_layers = [
            {
                "layer": f.name,
                "saturated_fraction": f.saturated / max(f.outputs, 1),
                "saturation_sqnr_db": round(f.saturation_sqnr, 2),
            }
            for f in sorted(found.values(), key=lambda f: f.saturation_sqnr)
            if f.saturated
        ]
    harmful = [s for s in check.saturating_layers if s["saturation_sqnr_db"] < LAYER_DB]
    names = ", ".join(layer["layer"] for layer in harmful[:5])
    if len(harmful) > 5:
        names += f" and {len(harmful) - 5} more"
    limit = min(GAP_DB, (check.quantization_sqnr_db or 0.0) + MARGIN_DB)
    if check.host_sqnr_db is not None and check.host_sqnr_db < limit:
        where = f"; layers that saturate: {names}" if names else ""
        check.warnings.append(
            f"ONNX Runtime's integer kernels on this CPU ({host.label}) differ from the model's "
            f"exact INT8 arithmetic: output SQNR {check.host_sqnr_db:.1f} dB against it, while "
            f"quantization itself is at {check.quantization_sqnr_db:.1f} dB against FP32, on "
            f"{check.samples} calibration samples{where}"
            + (f" — recalibrate with --isa {host.advice}" if host != isa else "")
        )
    elif isa.saturates and names:
        check.warnings.append(
            f"on {isa.label}, ONNX Runtime's u8×s8 kernel would saturate in {names} "
            f"(computed with the kernel's model on {check.samples} calibration samples)"
        )
    return check
