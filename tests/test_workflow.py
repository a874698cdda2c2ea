"""The whole workflow through the CLI on real models and data: import → baseline → calibrate →
INT8 inference → comparison, on Fashion-MNIST (classification) and ddddocr's detector."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibench.cli import main
from zoo.fashion import build_fashion_cnn
from zoo.fashion_folder import write_fashion_imagenet_folder
from zoo.text_detection import ddddocr_detector, write_text_coco


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def fashion_model() -> Path:
    return build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))


def test_fashion_mnist_workflow(
    fashion_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["--workspace", str(tmp_path / "ws")]
    write_fashion_imagenet_folder(tmp_path / "val", "test", 40)
    write_fashion_imagenet_folder(tmp_path / "cal", "train", 20)
    shutil.make_archive(str(tmp_path / "cal"), "gztar", tmp_path, "cal")
    imported = _json(["dataset", "import", str(tmp_path / "val"), "--name", "val", *ws], capsys)
    assert imported["task"] == "classification" and imported["samples"] == 400
    archive = _json(
        ["dataset", "import", str(tmp_path / "cal.tar.gz"), "--name", "cal", *ws], capsys
    )
    assert archive["samples"] == 200

    baseline = _json(
        ["infer", str(fashion_model), "-d", "val", "--seconds", "0.3", "-q", *ws], capsys
    )
    assert baseline["accuracy"]["figures"]["top1"] > 85 and not baseline["cached"]
    again = _json(["infer", str(fashion_model), "-d", "val", "--seconds", "0.3", "-q", *ws], capsys)
    assert again["cached"] and again["accuracy"] == baseline["accuracy"]

    int8 = tmp_path / "int8.onnx"
    assert (
        main(
            [
                "calibrate",
                str(fashion_model),
                "-d",
                "cal",
                "-o",
                str(int8),
                "-q",
                "--placement",
                "rule",
                *ws,
            ]
        )
        == 0
    )
    capsys.readouterr()
    html = tmp_path / "report.html"
    report = _json(
        [
            "compare",
            str(fashion_model),
            str(int8),
            "-d",
            "val",
            "--seconds",
            "0.3",
            "--html",
            str(html),
            "-q",
            *ws,
        ],
        capsys,
    )
    fp32_top1 = report["accuracy"]["fp32"]["top1"]
    int8_top1 = report["accuracy"]["int8"]["top1"]
    assert fp32_top1 - int8_top1 < 1.5, (fp32_top1, int8_top1)
    convs = [r for r in report["layers"] if r["op_type"] == "Conv"]
    assert convs and all(r["precision"] == "INT8" and r["int8_ms"] > 0 for r in convs)
    text = html.read_text()
    assert "<svg" in text and "http://" not in text and "https://" not in text


def test_report_renders_in_headless_chromium(fashion_model: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: make test installs it (apt-get install -y chromium)")
    int8 = tmp_path / "int8.onnx"
    data = tmp_path / "x.npz"
    rng = np.random.default_rng(0)
    np.savez(data, input=rng.uniform(0, 1, size=(16, 1, 28, 28)).astype(np.float32))
    assert main(["calibrate", str(fashion_model), "-d", str(data), "-o", str(int8), "-q"]) == 0
    html = tmp_path / "report.html"
    assert (
        main(
            [
                "compare",
                str(fashion_model),
                str(int8),
                "-d",
                str(data),
                "--seconds",
                "0.2",
                "--html",
                str(html),
                "-q",
                "--workspace",
                str(tmp_path / "ws"),
            ]
        )
        == 0
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,1600",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10  # charts and text, not a blank page


def test_detector_workflow_with_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    detector = ddddocr_detector()
    ws = ["--workspace", str(tmp_path / "ws")]
    write_text_coco(tmp_path / "val", 12, seed=1)
    write_text_coco(tmp_path / "cal", 12, seed=2)
    for name in ("val", "cal"):
        info = _json(["dataset", "import", str(tmp_path / name), "--name", name, *ws], capsys)
        assert info["task"] == "detection" and info["format"] == "coco"
    metric = ["--metric", "map:yolox", "--scale", "1"]
    fp32 = _json(
        ["infer", str(detector), "-d", "val", "--seconds", "0.3", "-q", *metric, *ws], capsys
    )
    assert fp32["accuracy"]["figures"]["mAP@0.5"] > 70
    int8 = tmp_path / "det-int8.onnx"
    assert (
        main(
            [
                "calibrate",
                str(detector),
                "-d",
                "cal",
                "--preset",
                "mixed",
                "--scale",
                "1",
                "-o",
                str(int8),
                "-q",
                *ws,
            ]
        )
        == 0
    )
    capsys.readouterr()
    report = _json(
        ["compare", str(detector), str(int8), "-d", "val", "--seconds", "0.3", "-q", *metric, *ws],
        capsys,
    )
    fp32_map, int8_map = (report["accuracy"][k]["mAP@0.5"] for k in ("fp32", "int8"))
    assert int8_map > fp32_map - 8, (fp32_map, int8_map)
    assert report["int8_layers"] > 200 and report["performance"]["int8"]["throughput"] > 0


def test_ctrl_c_stops_cleanly_and_writes_nothing(tmp_path: Path) -> None:
    write_text_coco(tmp_path / "cal", 30, seed=3)
    out = tmp_path / "int8.onnx"
    process = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("_interrupt.py")),
            "calibrate",
            str(ddddocr_detector()),
            "-d",
            str(tmp_path / "cal" / "images"),
            "--scale",
            "1",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupted once statistics have started, whatever the machine's speed.
    assert process.stdout is not None
    for line in process.stdout:
        stage, _, count = line.removeprefix("progress ").rpartition(" ")
        if stage == "statistics" and int(count.split("/")[0]) > 0:
            break
    else:
        raise AssertionError("the calibration ended without a statistics progress event")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted; nothing was written" in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))
