"""The Default method end to end on a small CNN: placement, kernels, accuracy, bias correction."""

from pathlib import Path

import numpy as np
import onnx

import calibench
from calibench.runtime.kernels import kernel_counts, runtime_nodes
from calibench.runtime.session import make_session


def test_every_conv_runs_as_an_integer_kernel(tiny_cnn_path: Path, tiny_data: Path) -> None:
    result = calibench.calibrate(tiny_cnn_path, tiny_data, subset="50%", placement="rule")
    onnx.checker.check_model(result.model)
    counts = kernel_counts(runtime_nodes(result.model))
    assert counts["INT8"]["QLinearConv"] == 3
    assert counts["INT8"]["QLinearAdd"] == 1 and counts["INT8"]["QGemm"] == 1
    assert "FP32" not in counts  # no float compute left
    rows = {r.name: r for r in result.report.layers}
    conv = next(r for r in rows.values() if r.op_type == "Conv")
    assert (conv.precision, conv.input_precision, conv.output_precision) == ("INT8", "U8", "U8")
    assert result.report.subset_size == 24 and result.report.dataset_size == 48


def test_int8_outputs_track_fp32(tiny_cnn_path: Path, tiny_data: Path) -> None:
    x = np.load(tiny_data)["input"]
    expected = make_session(onnx.load(str(tiny_cnn_path))).run(None, {"input": x})[0]
    for preset in ("performance", "mixed"):
        result = calibench.calibrate(tiny_cnn_path, tiny_data, preset=preset)
        got = make_session(result.model).run(None, {"input": x})[0]
        sqnr = 10 * np.log10((expected**2).sum() / ((expected - got) ** 2).sum())
        assert sqnr > 20, (preset, sqnr)


def test_bias_correction_never_lowers_output_fidelity(tiny_cnn_path: Path, tiny_data: Path) -> None:
    x = np.load(tiny_data)["input"]
    expected = make_session(onnx.load(str(tiny_cnn_path))).run(None, {"input": x})[0]

    def error(bias_correction: bool) -> float:
        config = calibench.CalibrationConfig(
            bias_correction=bias_correction, placement=calibench.Placement.RULE
        )
        model = calibench.calibrate(tiny_cnn_path, tiny_data, config=config).model
        return float(((make_session(model).run(None, {"input": x})[0] - expected) ** 2).mean())

    assert error(True) <= error(False) * 1.001


def test_api_takes_an_iterable_of_arrays(tiny_cnn_path: Path) -> None:
    rng = np.random.default_rng(5)
    samples = [rng.normal(size=(3, 32, 32)).astype(np.float32) for _ in range(10)]
    result = calibench.calibrate(tiny_cnn_path, samples, subset=4)
    assert result.report.subset_size == 4
    assert "QLinearConv" in result.report.kernels["INT8"]


def test_saved_model_records_its_origin(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path
) -> None:
    result = calibench.calibrate(tiny_cnn_path, tiny_data, subset=8)
    path = result.save(tmp_path / "int8.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["calibench.derived_from"] == "tiny_cnn.onnx"
