"""The README's OCR example, run: ddddocr's CTC text reader ([T, 1, C] out, batch fixed at 1),
rendered text lines labelled with their text, a custom metric (greedy CTC decode, 1 − CER), and
AccuracyAware on it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from calibench.cli import main
from calibench.metrics.custom import load_metric
from zoo.ocr_text import ddddocr_reader, write_text_npz

METRIC_FILE = Path("docs/examples/ocr_metric.py")
METRIC = f"{METRIC_FILE}:one_minus_cer"


@pytest.fixture(scope="module")
def text_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ocr")
    return {
        "test": write_text_npz(root / "text-test.npz", 24, seed=1),
        "cal": write_text_npz(root / "text-cal.npz", 12, seed=2),
        "workspace": root / "workspace",
    }


def _json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main([*args, "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_readme_shows_the_metric_that_runs() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    module = load_metric(METRIC).fn.__globals__
    for name in ("greedy_decode", "edit_distance", "one_minus_cer"):
        assert inspect.getsource(module[name]) in readme


def test_ocr_accuracy_given_imported_and_kept_by_accuracy_aware(
    text_sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reader = ddddocr_reader()
    ws = ["--workspace", str(text_sets["workspace"]), "--seconds", "0.2", "--no-cache"]
    given = _json(
        ["infer", str(reader), "-d", str(text_sets["test"]), "--metric", METRIC, *ws], capsys
    )
    accuracy = given["accuracy"]
    assert isinstance(accuracy, dict) and accuracy["metric"] == "one_minus_cer"
    assert accuracy["samples"] == 24
    fp32 = accuracy["figures"]["one_minus_cer"]
    assert fp32 >= 90.0  # the reader reads the rendered lines, whole sequences scored
    # Imported, the same file is the same annotated dataset.
    assert main(["dataset", "import", str(text_sets["test"]), "--workspace", ws[1]]) == 0
    assert "labels:     labels [24] <U6: a text per sample" in capsys.readouterr().out
    imported = _json(["infer", str(reader), "-d", "text-test", "--metric", METRIC, *ws], capsys)
    assert imported["accuracy"] == accuracy
    # Without a metric, texts are not class indices: performance only, no accuracy.
    plain = _json(["infer", str(reader), "-d", str(text_sets["test"]), *ws], capsys)
    assert plain["accuracy"] is None

    out = tmp_path / "reader-int8.onnx"
    report = _json(
        [
            "calibrate", str(reader), "-d", str(text_sets["cal"]),
            "--validation-dataset", str(text_sets["test"]),
            "--method", "accuracy-aware", "--max-drop", "5", "--metric", METRIC,
            "-o", str(out), "--workspace", ws[1],
        ],
        capsys,
    )  # fmt: skip
    figures = report["accuracy_aware"]
    assert isinstance(figures, dict) and figures["metric"] == "one_minus_cer"
    assert figures["fp32"] == pytest.approx(fp32) and figures["met"]
    int8 = _json(["infer", str(out), "-d", str(text_sets["test"]), "--metric", METRIC, *ws], capsys)
    assert int8["accuracy"]["figures"]["one_minus_cer"] == pytest.approx(figures["final"])  # type: ignore[index]


def test_the_workbench_says_why_text_labels_need_the_command_line(
    text_sets: dict[str, Path], tmp_path: Path
) -> None:
    from calibench.data.importer import import_dataset
    from calibench.server.db import DatasetRow
    from calibench.server.web.projects.checks import accuracy_aware_refusal

    result = import_dataset(text_sets["test"], tmp_path / "datasets", name="lines")
    row = DatasetRow(name="lines", task=result.task.value, summary=result.summary())
    refusal = accuracy_aware_refusal(row)
    assert refusal is not None and "labelled with a text per sample" in refusal
    assert "--metric package.module:function" in refusal
