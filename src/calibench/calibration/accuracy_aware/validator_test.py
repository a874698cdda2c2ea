"""AccuracyAware on a sequence model whose output keeps its batch on axis 1, batch fixed at 1."""

from pathlib import Path

import numpy as np
import onnx

import calibench
from calibench.runtime.session import make_session


def _weights(shape: tuple[int, ...], seed: int) -> str:
    values = np.random.default_rng(seed).normal(size=shape).round(3).reshape(-1)
    return ",".join(str(v) for v in values)


# Two 1-D convolutions over 16 time steps, answered time first: [T, N, C] = [16, 1, 5].
TIME_FIRST = f"""
<ir_version: 8, opset_import: ["" : 17]>
agraph (float[1, 4, 16] x) => (float[16, 1, 5] steps)
    <float[6, 4, 3] w1 = {{{_weights((6, 4, 3), 1)}}}, float[6] b1 = {{{_weights((6,), 2)}}},
     float[5, 6, 1] w2 = {{{_weights((5, 6, 1), 3)}}}, float[5] b2 = {{{_weights((5,), 4)}}}> {{
    h = Conv <pads = [1, 1]> (x, w1, b1)
    r = Relu (h)
    c = Conv (r, w2, b2)
    steps = Transpose <perm = [2, 0, 1]> (c)
}}
"""


def step_accuracy(outputs: dict[str, np.ndarray], label: np.ndarray) -> float:
    """Percent of time steps whose best class is the label's; outputs must be [T, C]."""
    (scores,) = outputs.values()
    assert scores.shape == (16, 5), scores.shape
    return 100.0 * float((scores.argmax(-1) == label).mean())


def test_accuracy_aware_scores_whole_sequences_and_ranks_per_sample(tmp_path: Path) -> None:
    model = onnx.parser.parse_model(TIME_FIRST)
    onnx.checker.check_model(model)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 4, 16)).astype(np.float32)
    session = make_session(model)
    # Labels: an array per sample (FP32's best class at each step), so FP32 scores 100.
    labels = np.stack([session.run(None, {"x": s[None]})[0][:, 0].argmax(-1) for s in x])
    np.savez(tmp_path / "val.npz", x=x, labels=labels)
    calibration = rng.normal(size=(8, 4, 16)).astype(np.float32)
    calibration[0] *= 300  # an outlier stretches the ranges: Default misses the target
    result = calibench.calibrate(
        model,
        [{"x": s} for s in calibration],
        method="accuracy-aware",
        max_drop=1.0,
        validation=tmp_path / "val.npz",
        metric=step_accuracy,
    )
    figures = result.report.accuracy_aware
    assert figures is not None and figures["metric"] == "step_accuracy"
    assert figures["fp32"] == 100.0 and figures["default"] < 90.0
    assert figures["met"] and figures["final"] >= 99.0 and figures["reverted"]
    assert figures["evaluations"]["ranking"] > 0  # the per-sample ranking ran
