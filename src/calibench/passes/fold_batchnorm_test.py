from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from calibench.passes.fold_batchnorm import FoldBatchNormPass
from calibench.runtime.session import make_session


def test_folding_removes_every_batchnorm_and_keeps_the_outputs(tiny_cnn_path: Path) -> None:
    original = onnx.load(str(tiny_cnn_path))
    assert sum(n.op_type == "BatchNormalization" for n in original.graph.node) == 3
    model = ir.from_proto(original)
    result = FoldBatchNormPass()(model)
    assert result.modified
    folded = ir.to_proto(model)
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    x = np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype(np.float32)
    expected = make_session(original).run(None, {"input": x})[0]
    got = make_session(folded).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
