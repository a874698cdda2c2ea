"""The command line: results, JSON, and one-line refusals that write nothing."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from calibench.cli import main
from zoo.nlp import build_tiny_transformer


def test_calibrate_writes_the_model_and_json(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "int8.onnx"
    code = main(
        [
            "calibrate",
            str(tiny_cnn_path),
            "-d",
            str(tiny_data),
            "--subset",
            "25%",
            "--preset",
            "mixed",
            "--placement",
            "rule",
            "-o",
            str(out),
            "--json",
            "--quiet",
        ]
    )
    assert code == 0 and out.exists()
    report = json.loads(capsys.readouterr().out)
    assert report["subset"] == {"size": 12, "of": 48, "unreadable_skipped": 0}
    assert report["config"]["preset"] == "mixed"
    assert set(report["seconds"]) >= {"statistics", "quantization", "bias correction"}
    assert report["kernels"]["INT8"]["QLinearConv"] == 3


def test_layers_of_an_fp32_model(tiny_cnn_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layers", str(tiny_cnn_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert rows and all(r["precision"] == "FP32" for r in rows)


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return code, err


def test_nlp_model_is_refused(
    tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = build_tiny_transformer(tmp_path / "nlp.onnx")
    out = tmp_path / "out.onnx"
    code, err = _refused(["calibrate", str(model), "-d", str(tiny_data), "-o", str(out)], capsys)
    assert code == 3 and "INT8 calibration is not available for NLP models" in err
    assert not out.exists()


def test_int8_model_is_refused(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "int8.onnx"
    assert (
        main(["calibrate", str(tiny_cnn_path), "-d", str(tiny_data), "-o", str(first), "-q"]) == 0
    )
    capsys.readouterr()
    second = tmp_path / "int8-again.onnx"
    code, err = _refused(["calibrate", str(first), "-d", str(tiny_data), "-o", str(second)], capsys)
    assert code == 3 and "derived from tiny_cnn.onnx" in err and not second.exists()
    # Stripped of calibench's marker, the same model is refused for being quantized.
    model = onnx.load(str(first))
    del model.metadata_props[:]
    onnx.save(model, str(first))
    code, err = _refused(["calibrate", str(first), "-d", str(tiny_data), "-o", str(second)], capsys)
    assert code == 3 and "INT8 calibration takes an FP32 model" in err


def test_corrupt_model_and_mismatched_data(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(tiny_cnn_path.read_bytes()[:500])
    data = tmp_path / "data.npz"
    np.savez(data, input=np.zeros((4, 3, 16, 16), np.float32))
    out = tmp_path / "out.onnx"
    code, err = _refused(["calibrate", str(corrupt), "-d", str(data), "-o", str(out)], capsys)
    assert code == 2 and "corrupt or truncated" in err
    code, err = _refused(["calibrate", str(tiny_cnn_path), "-d", str(data), "-o", str(out)], capsys)
    assert code == 4 and "expects shape [N, 3, 32, 32]" in err
    assert not out.exists()


def test_bad_option_is_one_line(
    tiny_cnn_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _refused(
        ["calibrate", str(tiny_cnn_path), "-d", str(tiny_data), "--subset", "150%"], capsys
    )
    assert code == 5 and "subset size must be in (0, 100]" in err
