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


def _labelled(tiny_cnn_path: Path, tiny_data: Path, path: Path) -> Path:
    """``tiny_data`` with labels: the FP32 model's own class on even samples, another on odd."""
    from calibench.runtime.session import make_session

    x = np.load(tiny_data)["input"][:12]
    top = make_session(onnx.load(str(tiny_cnn_path))).run(None, {"input": x})[0].argmax(1)
    labels = np.where(np.arange(12) % 2 == 0, top, (top + 1) % 10)
    np.savez(path, input=x, labels=labels)
    return path


def _infer_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["infer", *args, "--seconds", "0.05", "--json", "-q", "--no-cache"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_a_labelled_npz_counts_as_annotated_given_straight_or_imported(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _labelled(tiny_cnn_path, tiny_data, tmp_path / "test.npz")
    ws = ["--workspace", str(tmp_path / "ws")]
    given = _infer_json([str(tiny_cnn_path), "-d", str(npz), "--metric", "top1", *ws], capsys)
    assert main(["dataset", "import", str(npz), *ws]) == 0
    capsys.readouterr()
    imported = _infer_json([str(tiny_cnn_path), "-d", "test", *ws], capsys)
    for report in (given, imported):
        accuracy = report["accuracy"]
        assert isinstance(accuracy, dict) and accuracy["samples"] == 12
        assert accuracy["metric"] == "top1" and accuracy["figures"]["top1"] == 50.0
    # The figure the JSON names is a name --metric takes.
    again = _infer_json([str(tiny_cnn_path), "-d", str(npz), "--metric", "top1", *ws], capsys)
    assert again["accuracy"] == given["accuracy"]


def test_metric_names_one_list_in_help_parser_and_messages(
    tiny_cnn_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from calibench.metrics.registry import CHOICES

    for command in (["infer", "x.onnx"], ["calibrate", "x.onnx"], ["compare", "a", "b"]):
        assert main([*command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for choice in CHOICES:
            assert choice.spec.split(":")[-1] in text
            assert all(alias in text for alias in choice.aliases)
    # Refused by the parser, before any work: argparse's usage, then the one-line reason.
    assert main(["infer", str(tiny_cnn_path), "-d", str(tiny_data), "--metric", "top3"]) == 5
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --metric: unknown metric 'top3'; choose topk (top1, top5, accuracy)" in err
    code, err = _refused(
        ["infer", str(tiny_cnn_path), "-d", str(tiny_data), "--metric", "top1"], capsys
    )
    assert code == 5 and "tiny.npz has no annotations" in err and "'labels' array" in err


def test_a_custom_metric_that_raises_is_the_metrics_error(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _labelled(tiny_cnn_path, tiny_data, tmp_path / "test.npz")
    (tmp_path / "scores.py").write_text(
        "def fragile(outputs, label):\n"
        "    logits = outputs['logits']\n"
        "    return 100.0 / (label - label)  # fails on every sample\n"
    )
    args = ["infer", str(tiny_cnn_path), "-d", str(npz), "-q", "--seconds", "0.05"]
    args += ["--metric", f"{tmp_path / 'scores.py'}:fragile", "--no-cache"]
    code, err = _refused(args, capsys)
    assert code == 5 and "internal error" not in err
    assert "custom metric scores.py:fragile failed on sample 0: ZeroDivisionError" in err
    assert "--debug" in err
    assert main(["--debug", *args]) == 5
    err = capsys.readouterr().err
    assert "Traceback" in err and "return 100.0 / (label - label)" in err


def test_a_custom_metric_edited_between_runs_is_never_served_from_the_cache(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _labelled(tiny_cnn_path, tiny_data, tmp_path / "test.npz")
    script = tmp_path / "mine.py"
    args = [str(tiny_cnn_path), "-d", str(npz), "--metric", f"{script}:score"]
    args += ["--workspace", str(tmp_path / "ws")]
    figures = []
    for value in (1.0, 2.0):
        script.write_text(f"def score(outputs, label):\n    return {value}\n")
        assert main(["infer", *args, "--seconds", "0.05", "--json", "-q"]) == 0
        figures.append(json.loads(capsys.readouterr().out)["accuracy"]["figures"]["score"])
    assert figures == [1.0, 2.0]
