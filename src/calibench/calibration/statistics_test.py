from pathlib import Path

import numpy as np
import onnx

from calibench.calibration.statistics import _with_reductions, collect_statistics
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


def test_reductions_hand_back_two_numbers_per_sample_not_tensors(tiny_cnn_path: Path) -> None:
    """What keeps memory flat: ORT returns [batch] minima and maxima, never the activations."""
    model = onnx.load(str(tiny_cnn_path))
    names = [n.output[0] for n in model.graph.node if n.op_type == "Conv"]
    augmented, outputs = _with_reductions(model, names, raw=False, per_sample=True)
    from calibench.runtime.session import make_session

    x = np.zeros((3, 3, 32, 32), np.float32)
    results = make_session(augmented).run(outputs, {"input": x})
    assert all(r.shape == (3,) for r in results)
