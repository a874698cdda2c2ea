import numpy as np
import pytest

from calibench.calibration.ranges import activation_range
from calibench.calibration.statistics import TensorStats
from calibench.config import Preset, RangeEstimator
from calibench.quant import params_for_range


def _stats(samples: list[np.ndarray], histogram: bool = False) -> TensorStats:
    stats = TensorStats()
    for s in samples:
        stats.add(np.array([s.min()]), np.array([s.max()]))
        if histogram:
            stats.add_values(s)
    return stats


def test_symmetric_ranges_follow_pot_defaults() -> None:
    samples = [np.array([-1.0, 2.0]), np.array([-3.0, 1.0])]
    low, high = activation_range(_stats(samples), Preset.PERFORMANCE, RangeEstimator.MINMAX)
    assert (low, high) == (-2.5, 2.5)  # mean of per-sample absolute maxima
    p = params_for_range(low, high, Preset.PERFORMANCE)
    assert p.zero_point == 128 and p.scale == pytest.approx(2.5 / 127)


def test_non_negative_tensors_use_the_full_uint8_range() -> None:
    samples = [np.array([0.0, 6.0]), np.array([0.0, 4.0])]
    low, high = activation_range(_stats(samples), Preset.PERFORMANCE, RangeEstimator.MINMAX)
    p = params_for_range(low, high, Preset.PERFORMANCE)
    assert (low, high) == (0.0, 5.0) and p.zero_point == 0 and p.high == pytest.approx(5.0)


def test_asymmetric_ranges_use_mean_minima_and_maxima() -> None:
    samples = [np.array([-1.0, 3.0]), np.array([-0.5, 5.0])]
    low, high = activation_range(_stats(samples), Preset.MIXED, RangeEstimator.MINMAX)
    assert (low, high) == (-0.75, 4.0)
    p = params_for_range(low, high, Preset.MIXED)
    assert 0 < p.zero_point < 128
    assert p.low == pytest.approx(-0.75, abs=p.scale) and p.high == pytest.approx(4.0, abs=p.scale)


def test_percentile_ignores_a_single_outlier() -> None:
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=10_000) for _ in range(4)]
    samples[0][0] = 500.0
    minmax = activation_range(_stats(samples, True), Preset.PERFORMANCE, RangeEstimator.MINMAX)
    robust = activation_range(_stats(samples, True), Preset.PERFORMANCE, RangeEstimator.PERCENTILE)
    assert robust[1] < 10 < minmax[1]


def test_mse_finds_the_known_optimal_clip_of_a_laplace_tensor() -> None:
    """ACIQ (Banner et al.): the MSE-optimal 8-bit clip of Laplace(0, b) is about 9.89 b."""
    rng = np.random.default_rng(0)
    samples = [rng.laplace(scale=0.5, size=20_000) for _ in range(4)]
    low, high = activation_range(_stats(samples, True), Preset.PERFORMANCE, RangeEstimator.MSE)
    assert high == pytest.approx(9.89 * 0.5, rel=0.2) and low == -high


def test_histogram_keeps_every_count_when_its_span_doubles() -> None:
    stats = TensorStats()
    stats.add_values(np.linspace(-1, 1, 1000))
    stats.add_values(np.array([7.5, -3.0]))
    assert stats.histogram is not None and stats.histogram.sum() == 1002
    assert stats.half_width >= 7.5
