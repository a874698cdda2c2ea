"""From activation statistics to the range a tensor is quantized over (the estimators).

The range's scale and zero point, and every other piece of quantization arithmetic, come from
``calibench.quant``, which the graph passes share.
"""

from __future__ import annotations

import numpy as np

from calibench.calibration.statistics import TensorStats
from calibench.config import Preset, RangeEstimator
from calibench.quant import MIN_SCALE, params_for_range, uint8_codes

PERCENTILE = 99.99


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
        q = uint8_codes(centers, params)
        error = float(np.dot(weights, (centers - (q - params.zero_point) * params.scale) ** 2))
        if error < best_error:
            best, best_error = (low, high), error
    return best


def _quantile(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(counts[order])
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(values[order][min(index, len(order) - 1)])
