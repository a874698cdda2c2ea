"""From activation statistics to a range, and from a range to uint8 scale and zero point.

Activations are always executed as uint8 (ONNX Runtime's fast x86 path; int8 activations run
about 2× slower there). "Symmetric" therefore means a zero point of 0 for non-negative tensors
and 128 for signed ones; "asymmetric" means the zero point follows the tensor's own minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibench.calibration.statistics import TensorStats
from calibench.config import Preset, RangeEstimator
from calibench.errors import ModelError

MIN_SCALE = 1e-8
PERCENTILE = 99.99


@dataclass(frozen=True)
class QuantParams:
    scale: float
    zero_point: int
    """uint8 zero point."""

    @property
    def low(self) -> float:
        return (0 - self.zero_point) * self.scale

    @property
    def high(self) -> float:
        return (255 - self.zero_point) * self.scale


def activation_range(
    stats: TensorStats, preset: Preset, estimator: RangeEstimator
) -> tuple[float, float]:
    """The (low, high) range a tensor is quantized over; it always contains 0."""
    unsigned = stats.min_of_min >= 0
    if estimator is RangeEstimator.MINMAX or stats.histogram is None:
        if preset is Preset.PERFORMANCE:
            span = stats.mean_absmax
            low, high = (0.0, span) if unsigned else (-span, span)
        else:
            low, high = stats.mean_min, stats.mean_max
    elif estimator is RangeEstimator.PERCENTILE:
        low, high = _percentile_range(stats, preset, unsigned)
    else:
        low, high = _mse_range(stats, preset, unsigned)
    return min(float(low), 0.0), max(float(high), 0.0)


def params_for_range(low: float, high: float, preset: Preset, bits: int = 8) -> QuantParams:
    """uint8 params for [low, high]; ``bits=7`` maps the range onto 0..127 only (the stored type
    stays uint8), so that no u8×s8 pair of products can overflow 16 bits."""
    top = (1 << bits) - 1
    if low >= 0:
        return QuantParams(max(high / top, MIN_SCALE), 0)
    if preset is Preset.PERFORMANCE:
        span = max(-low, high)
        half = 1 << (bits - 1)
        return QuantParams(max(span / (half - 1), MIN_SCALE), half)
    scale = max((high - low) / top, MIN_SCALE)
    zero_point = int(np.clip(round(-low / scale), 0, top))
    return QuantParams(scale, zero_point)


def constant_params(values: np.ndarray) -> QuantParams:
    """Per-tensor asymmetric params that hold a constant's own values."""
    low = min(float(values.min()), 0.0)
    high = max(float(values.max()), 0.0)
    return params_for_range(low, high, Preset.MIXED)


def quantize_weights(weight: np.ndarray, axis: int, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8, narrow range −127..127 (per-channel absolute maximum);
    ``bits=7``: −63..63, which no u8×s8 pair of products can push past 16 bits."""
    top = (1 << (bits - 1)) - 1
    if not np.isfinite(weight).all():
        raise ModelError("the model's weights hold NaN or infinite values: it cannot be quantized")
    moved = np.moveaxis(weight, axis, 0).reshape(weight.shape[axis], -1)
    absmax = np.abs(moved).max(axis=1).astype(np.float64)
    scale = np.where(absmax > 0, absmax / top, 1.0)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -top, top).astype(np.int8)
    return q, scale.astype(np.float32)


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scale: np.ndarray) -> np.ndarray:
    """int32 bias with scale input_scale × weight_scale (what QLinearConv adds in integers)."""
    scale = (np.float64(input_scale) * weight_scale.astype(np.float64)).reshape(-1)
    limit = np.iinfo(np.int32).max
    return np.clip(np.round(bias.astype(np.float64) / scale), -limit, limit).astype(np.int32)


def _percentile_range(stats: TensorStats, preset: Preset, unsigned: bool) -> tuple[float, float]:
    centers, counts = stats.histogram_centers(), stats.histogram
    assert counts is not None
    if preset is Preset.PERFORMANCE or unsigned:
        span = _quantile(np.abs(centers), counts, PERCENTILE / 100)
        return (0.0, span) if unsigned else (-span, span)
    low = _quantile(centers, counts, 1 - PERCENTILE / 100)
    high = _quantile(centers, counts, PERCENTILE / 100)
    return low, high


def _mse_range(stats: TensorStats, preset: Preset, unsigned: bool) -> tuple[float, float]:
    """The clipping range with the least expected squared quantization error."""
    centers, counts = stats.histogram_centers(), stats.histogram
    assert counts is not None
    weights = counts / max(counts.sum(), 1)
    top = max(abs(stats.min_of_min), abs(stats.max_of_max), MIN_SCALE)
    fractions = np.geomspace(1e-3, 1.0, 96)
    if unsigned or preset is Preset.PERFORMANCE:
        candidates = [(0.0, f * top) if unsigned else (-f * top, f * top) for f in fractions]
    else:
        lows = np.geomspace(1e-3, 1.0, 24) * min(stats.min_of_min, 0.0)
        highs = np.geomspace(1e-3, 1.0, 24) * max(stats.max_of_max, 0.0)
        candidates = [(lo, hi) for lo in lows for hi in highs]
    best, best_error = candidates[-1], np.inf
    for low, high in candidates:
        params = params_for_range(min(low, 0.0), max(high, 0.0), preset)
        q = np.clip(np.round(centers / params.scale) + params.zero_point, 0, 255)
        error = float(np.dot(weights, (centers - (q - params.zero_point) * params.scale) ** 2))
        if error < best_error:
            best, best_error = (low, high), error
    return best


def _quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(counts[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(values[order][min(index, len(order) - 1)])
