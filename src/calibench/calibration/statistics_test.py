import itertools
import math
from pathlib import Path

import numpy as np
import onnx

from calibench.calibration.statistics import (
    ExactSum,
    TensorStats,
    collect_statistics,
    merge_statistics,
)
from calibench.data.npz import NpzDataset
from calibench.runtime.inputs import BatchReader, input_specs


def test_streamed_statistics_equal_per_sample_numpy(tiny_cnn_path: Path, tiny_data: Path) -> None:
    model = onnx.load(str(tiny_cnn_path))
    dataset = NpzDataset(tiny_data)
    reader = BatchReader(dataset, input_specs(model), batch_size=5)
    stats = collect_statistics(model, ["input"], reader, list(range(len(dataset))))["input"]
    x = dataset.arrays["input"].reshape(len(dataset), -1)
    assert stats.count == len(dataset)
    assert stats.min_of_min == x.min()
    np.testing.assert_allclose(stats.mean_max, x.max(axis=1).mean(), rtol=1e-6)
    np.testing.assert_allclose(stats.mean_absmax, np.abs(x).max(axis=1).mean(), rtol=1e-6)


def _pass(batches: list[np.ndarray]) -> TensorStats:
    stats = TensorStats()
    for values in batches:
        flat = values.reshape(len(values), -1)
        stats.add(flat.min(axis=1), flat.max(axis=1))
        stats.add_values(values)
    return stats


def test_shards_merge_into_the_statistics_of_one_pass_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    # Batches of very different spans (the histogram doubles several times), values on a bin
    # edge and exactly on a power of two, and sums whose naive order changes the last bit.
    batches = [rng.normal(scale=s, size=(4, 50)) for s in (0.01, 1.0, 3.0, 1e-3, 40.0, 0.7)]
    batches[2][0, 0] = 4.0
    batches[3][1, :3] = [0.1, 1e16, -1e16]
    whole = _pass(batches)
    for cut in ([1, 3], [2], [5], [1, 2, 3, 4, 5]):
        edges = [0, *cut, len(batches)]
        shards = [_pass(batches[a:b]) for a, b in itertools.pairwise(edges)]
        for order in (shards, shards[::-1]):
            merged = merge_statistics([{"t": s} for s in order])["t"]
            assert merged.count == whole.count
            assert (merged.min_of_min, merged.max_of_max) == (whole.min_of_min, whole.max_of_max)
            assert merged.mean_min == whole.mean_min and merged.mean_max == whole.mean_max
            assert merged.mean_absmax == whole.mean_absmax
            assert merged.half_width == whole.half_width
            assert merged.histogram is not None and whole.histogram is not None
            assert np.array_equal(merged.histogram, whole.histogram)


def test_histogram_span_is_the_power_of_two_above_the_largest_value() -> None:
    stats = TensorStats()
    stats.add_values(np.array([0.3, -0.2]))
    assert stats.half_width == 0.5
    stats.add_values(np.array([2.0]))  # exactly a power of two: the span goes above it
    assert stats.half_width == 4.0 and stats.histogram is not None
    assert stats.histogram.sum() == 3


def test_exact_sum_does_not_depend_on_the_order_of_its_terms() -> None:
    terms = [1e16, 1.0, -1e16, 3.14159, 1e-8] * 7
    forward, backward = ExactSum(), ExactSum()
    forward.add(terms)
    backward.add(terms[::-1])
    assert forward.value == backward.value == math.fsum(terms)
    assert sum(terms) != math.fsum(terms)  # the naive sum loses the small terms
