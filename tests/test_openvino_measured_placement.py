"""`calibrate --runtime openvino` with speed-aware placement (the default): the candidate
precisions are timed on OpenVINO, where the model will run, and the report says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from calibench.calibration.default import PLACEMENT_STAGE, run_default
from calibench.cli import main
from calibench.config import CalibrationConfig
from calibench.runtime.backend import Runtime
from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input
from zoo.fashion_folder import write_fashion_imagenet_folder

pytest.importorskip("openvino")

SETTING = "batch 1, 1 thread, OpenVINO"


@pytest.fixture(scope="module")
def model() -> Path:
    return build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))


def test_calibrate_for_openvino_times_the_placement_on_openvino(
    model: Path, tmp_path: Path
) -> None:
    write_fashion_imagenet_folder(tmp_path / "cal", "train", 10)
    report_path, out = tmp_path / "report.json", tmp_path / "int8.onnx"
    args = ["calibrate", str(model), "-d", str(tmp_path / "cal"), "-o", str(out), "-q"]
    args += ["--runtime", "openvino", "--inference-batch", "1", "--inference-threads", "1"]
    assert main([*args, "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())

    assert PLACEMENT_STAGE in report["seconds"]
    notes = report["notes"]
    assert notes[0].startswith(f"placement timing ({SETTING}): "), notes
    assert not any(note.startswith("placement: by rule") for note in notes), notes
    rows = {row["name"]: row for row in report["layers"]}
    measured = [r for r in rows.values() if (r["reason"] or "").startswith("kept FP32: INT8 ")]
    # A layer kept FP32 says what OpenVINO measured, and OpenVINO runs it in FP32.
    for row in measured:
        assert row["reason"].endswith(f"ms at {SETTING}") and row["precision"] == "FP32"
    # The rest of the Convs run in INT8 on OpenVINO (the layer table is its runtime graph).
    convs = [r for r in rows.values() if r["op_type"] == "Conv" and r not in measured]
    assert convs and all(r["precision"] == "INT8" and "I8" in r["kernel"] for r in convs)
    assert out.exists()


def test_without_openvino_the_rule_placement_stays_and_the_note_says_why(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    images, _ = load_fashion_mnist("train")
    data = [{"input": to_model_input(images[i : i + 1])[0]} for i in range(8)]
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails
    config = CalibrationConfig(runtime=Runtime.OPENVINO, bias_correction=False)
    outcome = run_default(onnx.load(str(model)), data, config, threads=1)
    assert outcome.placement is None
    note = next(n for n in outcome.notes if n.startswith("placement: by rule, untimed: "))
    assert "OpenVINO runtime is not installed" in note and "pip install calibench[openvino]" in note
    assert all(d.int8 for d in outcome.plan.layers.values() if d.op_type == "Conv")
    assert np.isfinite([p.scale for p in outcome.params.values()]).all()


def test_a_layer_kept_fp32_on_openvino_says_where_it_was_timed() -> None:
    # Certain times (a fake timer): the wording, not OpenVINO's speed, is under test.
    from calibench.calibration.measured_placement import place_by_timing
    from calibench.calibration.measured_placement_test import FakeTimer, _model, _plan_and_params

    class OpenVinoTimes(FakeTimer):
        label = "OpenVINO"

    model = _model()
    plan, params = _plan_and_params(model)
    timer = OpenVinoTimes({"first": (0.030, 0.010), "second": (0.05, 0.5), "third": (0.05, 0.5)})
    placed = place_by_timing(model, plan, params, timer, budget_s=30)
    assert placed.plan.layers["first"].reason == (
        f"kept FP32: INT8 0.030 ms vs FP32 0.010 ms at {SETTING}"
    )
    assert placed.notes[0].startswith(f"placement timing ({SETTING}): ")
