"""Calibration settings: frozen, validated, serialisable.

The same object travels through the Python API, the CLI and (later) the job runner, so every field
is a plain value or an enum and ``to_dict``/``from_dict`` round-trip it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from calibench.errors import ConfigError
from calibench.runtime.backend import Runtime
from calibench.runtime.isa import Isa


class Preset(str, Enum):
    """How activations are quantized (weights are always symmetric per channel)."""

    PERFORMANCE = "performance"
    """Symmetric activations: zero point 0 for non-negative tensors, 128 for signed ones."""
    MIXED = "mixed"
    """Asymmetric activations: the zero point follows the tensor's own minimum and maximum."""


class Method(str, Enum):
    DEFAULT = "default"
    """Every layer the runtime can execute in INT8 goes to INT8."""
    ACCURACY_AWARE = "accuracy-aware"
    """The fastest model found whose accuracy drop stays within ``max_drop``."""


class DropType(str, Enum):
    ABSOLUTE = "absolute"
    """``max_drop`` in metric points: 0.5 allows 76.0 → 75.5."""
    RELATIVE = "relative"
    """``max_drop`` in percent of the FP32 figure: 1 allows 76.0 → 75.24."""


class RangeEstimator(str, Enum):
    """How an activation's range is taken from per-sample statistics."""

    MINMAX = "minmax"
    """POT/NNCF defaults: symmetric = min of minima, mean of absolute maxima;
    asymmetric = mean of minima and of maxima."""
    PERCENTILE = "percentile"
    """Outlier-robust: per-sample 0.01% / 99.99% quantiles, averaged over samples."""
    MSE = "mse"
    """Outlier-robust: the clipping range that minimises the quantization error of a
    per-tensor histogram."""


class Placement(str, Enum):
    """How layers are placed in INT8 or FP32."""

    MEASURED = "measured"
    """Timed on this machine at the inference batch size and threads: a layer stays FP32 where
    INT8, with the conversions it adds, is not faster (``calibration.measured_placement``)."""
    RULE = "rule"
    """Every layer ONNX Runtime can run in INT8 goes to INT8, untimed."""


PLACEMENT_BUDGET_S = 30.0


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Subset:
    """How many dataset samples calibration uses: a percentage or an absolute count."""

    percent: float | None = 100.0
    count: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.count is None):
            raise ConfigError("give the subset either as a percentage or as a count, not both")
        if self.percent is not None and not _is_number(self.percent):
            raise ConfigError(f"subset percentage must be a number, got {self.percent!r}")
        if self.count is not None:
            if not _is_integer(self.count):
                raise ConfigError(f"subset count must be a whole number, got {self.count!r}")
            object.__setattr__(self, "count", int(self.count))
        if not _is_integer(self.seed) or self.seed < 0:
            raise ConfigError(f"the seed must be a whole number, 0 or more, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.percent is not None and not 0 < self.percent <= 100:
            raise ConfigError(f"subset size must be in (0, 100] percent, got {self.percent}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"subset size must be at least 1 sample, got {self.count}")

    @classmethod
    def parse(cls, text: str | float | int, seed: int = 0) -> Subset:
        """Read ``"10%"`` (percent), ``"300"`` (count) or a fraction ``0.1`` (API use)."""
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ConfigError(f"not a subset size: {text!r}")
        if isinstance(text, float) and not math.isfinite(text):
            raise ConfigError(f"not a subset size: {text!r}")
        if isinstance(text, float) and 0 < text <= 1:
            return cls(percent=text * 100, seed=seed)
        if isinstance(text, (int, float)):
            return cls(percent=None, count=int(text), seed=seed)
        raw = text.strip()
        try:
            if raw.endswith("%"):
                return cls(percent=float(raw[:-1]), seed=seed)
            return cls(percent=None, count=int(raw), seed=seed)
        except ValueError:
            raise ConfigError(
                f"not a subset size: {text!r} (write a percentage like 10% or a count like 300)"
            ) from None

    def size(self, n: int) -> int:
        """Samples taken from a dataset of ``n``: ceil(n × percent / 100), as DL Workbench."""
        if self.count is not None:
            return min(self.count, n)
        assert self.percent is not None
        return max(1, min(n, math.ceil(n * self.percent / 100 - 1e-9)))

    def describe(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else f"{self.count} samples"


@dataclass(frozen=True)
class CalibrationConfig:
    """Everything that decides the INT8 model, and nothing that does not."""

    method: Method = Method.DEFAULT
    preset: Preset = Preset.PERFORMANCE
    subset: Subset = field(default_factory=Subset)
    range_estimator: RangeEstimator = RangeEstimator.MINMAX
    bias_correction: bool = True
    batch_size: int = 8
    max_drop: float | None = None
    """AccuracyAware: the largest accuracy drop accepted (see ``drop_type``)."""
    drop_type: DropType = DropType.ABSOLUTE
    validation_subset: Subset | None = None
    """AccuracyAware: the validation samples accuracy is measured on (default: all)."""
    metric: str | None = None
    """AccuracyAware: a metric spec (``top1``, ``map:yolox``, ``module:function``); default:
    the dataset type's own."""
    isa: str = "auto"
    """The ISA class the model will run on (``auto``: this machine's CPU). On one whose INT8
    kernels saturate (AVX2, AVX-512 without VNNI), layers get an overflow-safe scheme."""
    keep_fp32: tuple[str, ...] = ()
    """Layers kept in FP32 by the user: node names, op types or regular expressions."""
    memory_limit: int | None = None
    """Bytes the calibration passes may hold (None: a quarter of the machine's memory); batch
    sizes are cut to fit."""
    placement: Placement = Placement.MEASURED
    """``measured`` (default): layers where INT8 is not faster on this CPU stay FP32; ``rule``:
    every layer that can run in INT8 does. ``measured`` falls back to ``rule`` when ``isa``
    names another CPU than this one (its timings would not hold there)."""
    placement_budget_s: float = PLACEMENT_BUDGET_S
    """Seconds speed-aware placement may spend timing."""
    placement_batch: int = 1
    """The batch size the model will run at, which placement times (the project's batch)."""
    placement_threads: int | None = None
    """The threads it will run with (None: the calibration's threads, all cores by default)."""
    runtime: Runtime = Runtime.ONNXRUNTIME
    """The runtime the model is made for: where the quantizers go differs (``passes.
    placement_openvino``)."""

    def __post_init__(self) -> None:
        for name, kind in (
            ("method", Method),
            ("preset", Preset),
            ("range_estimator", RangeEstimator),
            ("drop_type", DropType),
            ("placement", Placement),
            ("runtime", Runtime),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind):
                try:
                    object.__setattr__(self, name, kind(value))
                except ValueError:
                    choices = ", ".join(v.value for v in kind)
                    raise ConfigError(
                        f"unknown {name} {value!r}; choose one of: {choices}"
                    ) from None
        for name, kinds, what in (
            ("subset", (Subset,), "a Subset"),
            ("validation_subset", (Subset, type(None)), "a Subset or None"),
            ("bias_correction", (bool,), "true or false"),
            ("metric", (str, type(None)), "a metric name or None"),
            ("isa", (str,), "an ISA name"),
        ):
            if not isinstance(getattr(self, name), kinds):
                raise ConfigError(f"{name} must be {what}, got {getattr(self, name)!r}")
        if not _is_integer(self.batch_size):
            raise ConfigError(f"batch size must be a whole number, got {self.batch_size!r}")
        if self.max_drop is not None and (
            not _is_number(self.max_drop) or not math.isfinite(self.max_drop)
        ):
            raise ConfigError(f"the maximum accuracy drop must be a number, got {self.max_drop!r}")
        isa = str(self.isa).strip().lower()
        object.__setattr__(self, "isa", isa if isa == "auto" else Isa.parse(isa).value)
        patterns = (self.keep_fp32,) if isinstance(self.keep_fp32, str) else self.keep_fp32
        if not isinstance(patterns, (tuple, list)) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(
                f"keep-FP32 takes layer names, op types or regexes, got {self.keep_fp32!r}"
            )
        object.__setattr__(self, "keep_fp32", tuple(str(p) for p in patterns))
        if any(not p.strip() for p in self.keep_fp32):
            raise ConfigError("keep-FP32 takes a layer name, an op type or a regex, not ''")
        if not _is_number(self.placement_budget_s) or not 0 < self.placement_budget_s < 1e6:
            raise ConfigError(
                f"the placement budget must be a positive number of seconds, got "
                f"{self.placement_budget_s!r}"
            )
        for name in ("placement_batch", "placement_threads"):
            value = getattr(self, name)
            if name == "placement_threads" and value is None:
                continue
            if not _is_integer(value) or value < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be 1 or more, got {value!r}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.method is Method.ACCURACY_AWARE:
            if self.max_drop is None:
                raise ConfigError("the AccuracyAware method needs a maximum accuracy drop")
            if not math.isfinite(self.max_drop) or self.max_drop < 0:
                raise ConfigError(
                    f"the maximum accuracy drop must be 0 or more, got {self.max_drop}"
                )
            if self.max_drop >= 100:
                unit = (
                    "points of the metric (0.5 = half a point)"
                    if self.drop_type is DropType.ABSOLUTE
                    else "percent of the FP32 accuracy (1 = 1 % of it)"
                )
                raise ConfigError(
                    f"a maximum accuracy drop of {self.max_drop} "
                    f"{'points' if self.drop_type is DropType.ABSOLUTE else '%'} accepts any "
                    f"model; give the drop in {unit}"
                )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("method", "preset", "range_estimator", "drop_type", "placement", "runtime"):
            data[name] = getattr(self, name).value
        data["keep_fp32"] = list(self.keep_fp32)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationConfig:
        data = dict(data)
        for key in ("subset", "validation_subset"):
            if isinstance(data.get(key), dict):
                data[key] = Subset(**data[key])
        if "keep_fp32" in data:
            data["keep_fp32"] = tuple(data["keep_fp32"] or ())
        return cls(**data)
