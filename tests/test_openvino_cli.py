"""`--runtime openvino` end to end on the command line: inference, comparison (terminal, JSON,
HTML), and the refusal when OpenVINO is not installed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from calibench.cli import main
from zoo.fashion import build_fashion_cnn
from zoo.fashion_folder import write_fashion_imagenet_folder

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ov-cli")
    write_fashion_imagenet_folder(root / "val", "test", 10)
    write_fashion_imagenet_folder(root / "cal", "train", 10)
    model = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    int8 = root / "int8.onnx"
    # By rule: the test reads that every Conv runs in INT8 on OpenVINO.
    args = ["calibrate", str(model), "-d", str(root / "cal"), "-o", str(int8), "-q"]
    assert main([*args, "--placement", "rule"]) == 0
    return {"root": root, "model": model, "int8": int8, "val": root / "val"}


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_infer_and_compare_on_openvino(
    fashion: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["--workspace", str(fashion["root"] / "ws"), "--seconds", "0.3", "-q"]
    assert main(["dataset", "import", str(fashion["val"]), "--name", "val", *ws[:2]]) == 0
    common = ["-d", "val", *ws]
    on_ov = _json(
        ["infer", str(fashion["model"]), *common, "--runtime", "openvino", "--json"], capsys
    )
    on_ort = _json(["infer", str(fashion["model"]), *common, "--json"], capsys)
    measured = on_ov["performance"]["measured_on"]
    assert measured["runtime"] == "openvino" and "OpenVINO" in measured["text"]
    assert on_ort["performance"]["measured_on"]["runtime"] == "onnxruntime"
    assert not on_ov["cached"]  # a result of the other runtime is no cache hit
    # the FP32 model scores the same on both runtimes (f32 precision hint)
    assert on_ov["accuracy"]["figures"]["top1"] == pytest.approx(
        on_ort["accuracy"]["figures"]["top1"], abs=1.0
    )

    html = fashion["root"] / "report.html"
    args = [
        "compare",
        str(fashion["model"]),
        str(fashion["int8"]),
        *common,
        "--runtime",
        "openvino",
        "--html",
        str(html),
    ]
    report = _json([*args, "--json"], capsys)
    assert report["runtime"] == "openvino"
    assert report["measured_on"]["runtime"] == "openvino"
    assert report["profile"]["measured_on"]["text"].startswith("batch 1, 1 thread, OpenVINO")
    convs = [r for r in report["layers"] if r["op_type"] == "Conv"]
    assert convs and all(r["precision"] == "INT8" for r in convs)
    assert all("I8" in r["kernel"] for r in convs)  # OpenVINO's kernels, not ORT's
    assert all(r["int8_ms"] is not None and r["fp32_ms"] is not None for r in convs)
    page = html.read_text()
    assert "OpenVINO runtime graph" in page and "Speed measured on: batch 1" in page

    assert main(args) == 0  # the terminal table
    out = capsys.readouterr().out
    assert "OpenVINO runtime graph" in out and "faster (batch 1" in out


def test_a_missing_openvino_is_one_line_and_exit_5(
    fashion: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    code = main(
        ["infer", str(fashion["model"]), "-d", str(fashion["val"]), "--runtime", "openvino", "-q"]
    )
    err = capsys.readouterr().err
    assert code == 5
    assert "pip install calibench[openvino]" in err and "Traceback" not in err
