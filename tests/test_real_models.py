"""Real models, real data: MobileNetV2 (ImageNet weights) and a CNN trained on Fashion-MNIST."""

from pathlib import Path

import numpy as np
import onnx
import pytest

import calibench
from calibench.cli import main
from calibench.runtime.kernels import kernel_counts, runtime_nodes
from calibench.runtime.session import make_session
from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input
from zoo.photos import imagenet_preprocess, natural_crops, write_image_folder


def _predict(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    session = make_session(model)
    return np.concatenate(
        [session.run(None, {"input": x[i : i + 100]})[0] for i in range(0, len(x), 100)]
    ).argmax(axis=1)


@pytest.mark.parametrize("preset", ["performance", "mixed"])
def test_mobilenet_v2_is_fully_int8_and_agrees_with_fp32(mobilenet_path: Path, preset: str) -> None:
    calibration = [{"input": x} for x in imagenet_preprocess(natural_crops(96, seed=0))]
    result = calibench.calibrate(mobilenet_path, calibration, preset=preset, placement="rule")
    int8 = kernel_counts(runtime_nodes(result.model))["INT8"]
    assert int8["QLinearConv"] == 52 and int8["QLinearAdd"] == 10 and int8["QGemm"] == 1
    held_out = imagenet_preprocess(natural_crops(300, seed=99))
    agreement = (_predict(result.model, held_out) == _predict(mobilenet_path, held_out)).mean()
    assert agreement >= 0.85, agreement


def test_fashion_cnn_loses_under_one_point(tmp_path: Path) -> None:
    model = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    train_images, _ = load_fashion_mnist("train")
    data = tmp_path / "calibration.npz"
    np.savez(data, input=to_model_input(train_images[::200]))  # 300 training images
    result = calibench.calibrate(model, data)
    images, labels = load_fashion_mnist("test")
    x = to_model_input(images)
    fp32 = (_predict(model, x) == labels).mean() * 100
    int8 = (_predict(result.model, x) == labels).mean() * 100
    assert fp32 > 90 and fp32 - int8 < 1.0, (fp32, int8)


def test_cli_calibrates_mobilenet_from_an_image_folder(
    mobilenet_path: Path, tmp_path: Path
) -> None:
    write_image_folder(tmp_path / "images", 24, size=256, seed=3)
    (tmp_path / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "int8.onnx"
    report = tmp_path / "report.json"
    code = main(
        [
            "calibrate",
            str(mobilenet_path),
            "-d",
            str(tmp_path / "images"),
            "--subset",
            "50%",
            "--resize",
            "256",
            "--crop",
            "224",
            "--mean",
            "0.485,0.456,0.406",
            "--std",
            "0.229,0.224,0.225",
            "-o",
            str(out),
            "--report",
            str(report),
            "-q",
        ]
    )
    assert code == 0 and out.exists()
    import json

    data = json.loads(report.read_text())
    assert data["subset"]["size"] == 13 and data["subset"]["of"] == 25
