from pathlib import Path

import numpy as np
import onnx

from calibench.calibration.statistics import collect_statistics
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
