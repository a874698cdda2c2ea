"""Samples are checked where they enter: non-finite floats are refused, naming sample and input."""

import numpy as np
import pytest

from calibench.data.dataset import InMemoryDataset
from calibench.errors import DatasetError
from calibench.runtime.inputs import BatchReader, InputSpec

SPEC = InputSpec("pixels", np.dtype(np.float32), ("N", 3, 4, 4))


def _read(samples: list[np.ndarray], spec: InputSpec = SPEC) -> list[list[int]]:
    reader = BatchReader(InMemoryDataset(samples, [spec.name]), [spec], batch_size=2)
    return [indices for indices, _ in reader.batches(list(range(len(samples))))]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_is_refused_naming_sample_and_input(bad: float) -> None:
    samples = [np.zeros((3, 4, 4), np.float32) for _ in range(4)]
    samples[2][1, 2, 3] = bad
    with pytest.raises(DatasetError, match=r"sample 2\b.*'pixels'|'pixels'.*sample 2\b") as err:
        _read(samples)
    assert "NaN or infinite" in str(err.value) and "converted" not in str(err.value)


def test_float64_data_that_overflows_float32_is_refused() -> None:
    samples = [np.full((3, 4, 4), 1e39, np.float64)]
    with pytest.raises(DatasetError, match="'pixels'.*once converted to float32"):
        _read(samples)


def test_huge_finite_values_and_integer_inputs_are_data() -> None:
    samples = [np.full((3, 4, 4), 3e38, np.float32), np.full((3, 4, 4), -3e38, np.float32)]
    assert _read(samples) == [[0, 1]]
    ints = InputSpec("ids", np.dtype(np.int64), ("N", 5))
    assert _read([np.arange(5), np.arange(5)], ints) == [[0, 1]]
