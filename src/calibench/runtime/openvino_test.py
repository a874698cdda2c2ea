"""OpenVINO as a runtime: a real model's outputs against ONNX Runtime's, the runtime graph read
back onto the ONNX layers, and the message when OpenVINO is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import calibench
from calibench.runtime.backend import Runtime
from calibench.runtime.compile import compile_model
from calibench.runtime.openvino import INSTALL_HINT, OpenVinoMissingError, import_openvino

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def fashion() -> tuple[Path, np.ndarray, np.ndarray]:
    """The trained Fashion-MNIST CNN and 200 real test images with their labels."""
    from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input

    model = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    images, labels = load_fashion_mnist("test")
    return model, to_model_input(images[:200]), labels[:200]


@pytest.fixture(scope="module")
def fashion_int8(fashion: tuple[Path, np.ndarray, np.ndarray], tmp_path_factory) -> Path:
    from zoo.fashion import load_fashion_mnist, to_model_input

    model, _, _ = fashion
    images, _ = load_fashion_mnist("train")
    data = tmp_path_factory.mktemp("ov") / "cal.npz"
    np.savez(data, input=to_model_input(images[:64]))
    out = data.parent / "fashion-int8.onnx"
    calibench.calibrate(model, data, threads=1, placement="rule").save(out)
    return out


def _logits(runtime: Runtime, model: Path, inputs: np.ndarray) -> np.ndarray:
    run = compile_model(runtime, model, threads=1).request()
    return np.concatenate([run({"input": inputs[i : i + 50]})[0] for i in range(0, 200, 50)])


def test_openvino_runs_the_fp32_model_as_onnxruntime_does(fashion) -> None:
    model, inputs, labels = fashion
    ov = _logits(Runtime.OPENVINO, model, inputs)
    ort = _logits(Runtime.ONNXRUNTIME, model, inputs)
    assert ov.shape == ort.shape == (200, 10)
    # f32 precision hint: the same arithmetic up to summation order (bf16 would be ~1e-2).
    assert np.abs(ov - ort).max() < 1e-3 * max(1.0, float(np.abs(ort).max()))
    assert (ov.argmax(1) == ort.argmax(1)).all()
    assert (ov.argmax(1) == labels).mean() > 0.85


def test_openvino_runs_calibench_int8_layers_in_int8(fashion, fashion_int8: Path) -> None:
    from calibench.runtime.openvino_layers import profile_openvino

    model, inputs, labels = fashion
    feeds = {"input": inputs[:1]}
    int8 = profile_openvino(fashion_int8, feeds, runs=3, warmup=1)
    convs = [layer for layer in int8.layers.values() if layer.op_type == "Conv"]
    assert len(convs) >= 6
    assert all(layer.precision == "INT8" for layer in convs), [(c.name, c.precision) for c in convs]
    assert all("I8" in layer.kernel or "(fused" in layer.kernel for layer in convs)
    assert int8.layers["/head/Gemm"].precision == "INT8"
    assert int8.counts()["INT8"] >= 8
    # every Conv got time of its own, and the total is the layers' sum
    assert all(int8.times.layers_ms.get(c.name, 0) > 0 for c in convs)
    assert int8.times.total_ms == pytest.approx(sum(int8.times.layers_ms.values()))

    fp32 = profile_openvino(model, feeds, runs=3, warmup=1)
    assert {layer.precision for layer in fp32.layers.values()} == {"FP32"}

    # and the INT8 model keeps its accuracy on OpenVINO
    logits = _logits(Runtime.OPENVINO, fashion_int8, inputs)
    assert (logits.argmax(1) == labels).mean() > 0.85


def test_openvino_names_its_layers_after_the_onnx_nodes(fashion_int8: Path) -> None:
    from calibench.runtime.openvino_layers import OriginalNames

    names = OriginalNames(onnx.load(str(fashion_int8)))
    conv = "/features/features.0/features.0.0/Conv"
    assert names.resolve(f"{conv}/WithoutBiases").name == conv  # type: ignore[union-attr]
    assert names.resolve("logits").name == "/head/Gemm"  # type: ignore[union-attr]
    assert names.resolve("input::QuantizeLinear") is None
    assert names.is_conversion("input::QuantizeLinear")


def test_a_missing_openvino_is_named_with_its_install_command(
    monkeypatch: pytest.MonkeyPatch, fashion
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails
    with pytest.raises(OpenVinoMissingError, match=r"pip install calibench\[openvino\]"):
        import_openvino()
    with pytest.raises(OpenVinoMissingError) as error:
        compile_model(Runtime.OPENVINO, fashion[0])
    assert INSTALL_HINT in str(error.value) and "--runtime onnxruntime" in str(error.value)
    assert error.value.exit_code == 5
