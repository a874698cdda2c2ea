"""Where, how and when a speed figure was measured, recorded with the figure itself.

A throughput means little alone: the same model runs at different speeds on another CPU, another
runtime, another batch size, or on the same machine under another load. Every speed measurement
carries this stamp, so whatever shows the figure later (the CLI, the report, the workbench's
pages) can say beside it: batch × streams, runtime, CPU and its INT8 instructions, the time, and
which models were timed together in alternating windows (only figures timed together may be
divided into a speed-up)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cache
from typing import Any

from calibench.runtime.isa import Isa, host_cpu

ONNXRUNTIME = "onnxruntime"


@dataclass(frozen=True)
class Measurement:
    at: str
    """When the timing ended: ISO 8601, UTC, to the second."""
    runtime: str
    """The runtime and its version, e.g. ``ONNX Runtime 1.22.1``."""
    cpu: str
    """The CPU's model name, as the machine that measured reports it."""
    isa: str
    """The CPU's INT8 class (:class:`~calibench.runtime.isa.Isa`'s value)."""
    isa_label: str
    """The same, in words: ``VNNI``, ``AVX2 without VNNI``…"""
    timed_with: tuple[str, ...] = ()
    """The models timed in the same alternating windows (all of them, this one included); empty
    when the model was timed alone."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["timed_with"] = list(self.timed_with)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        known = {k: data[k] for k in ("at", "runtime", "cpu", "isa", "isa_label") if k in data}
        return cls(**known, timed_with=tuple(data.get("timed_with") or ()))


def measurement(
    timed_with: Sequence[str] = (), runtime: str = ONNXRUNTIME, at: datetime | None = None
) -> Measurement:
    """The stamp of a timing that ends now on this machine (a job on a target stamps its own:
    the job body runs there)."""
    cpu = host_cpu()
    moment = (at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return Measurement(
        at=moment.isoformat(timespec="seconds"),
        runtime=runtime_label(runtime),
        cpu=cpu.model,
        isa=cpu.isa.value,
        isa_label=cpu.isa.label,
        timed_with=tuple(timed_with) if len(timed_with) > 1 else (),
    )


@cache
def runtime_label(runtime: str) -> str:
    """``onnxruntime`` → ``ONNX Runtime 1.22.1``; ``openvino`` → ``OpenVINO 2025.1``."""
    if runtime == ONNXRUNTIME:
        import onnxruntime

        return f"ONNX Runtime {onnxruntime.__version__}"
    if runtime == "openvino":
        try:
            import openvino

            version = openvino.__version__.split("-")[0]
        except (ImportError, AttributeError):
            version = ""
        return f"OpenVINO {version}".strip()
    return runtime


def isa_words(isa: str) -> str:
    """An ISA class's value in words; an unknown one as it is."""
    try:
        return Isa(isa).label
    except ValueError:
        return isa
