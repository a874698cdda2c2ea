"""The overflow-safe scheme on real models: exact arithmetic, and ONNX Runtime's real AVX2
kernels (qemu, see ``avx2_cpu``), whatever CPU the suite runs on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import calibench
from calibench.calibration import overflow
from calibench.cli import main
from calibench.errors import ConfigError, KernelCheckError
from calibench.runtime.isa import host_cpu
from calibench.runtime.session import make_session
from tests.avx2_cpu import needs_avx2_cpu, run_on_avx2
from zoo.fashion import build_fashion_cnn, load_fashion_mnist, to_model_input
from zoo.photos import imagenet_preprocess, natural_crops


def _top1(outputs: np.ndarray) -> np.ndarray:
    return outputs.reshape(len(outputs), -1).argmax(axis=1)


def _run(model: onnx.ModelProto | Path, x: np.ndarray, exact: bool = False) -> np.ndarray:
    level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if exact
        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    session = make_session(model, optimization=level)
    return np.concatenate(
        [session.run(None, {"input": x[i : i + 50]})[0] for i in range(0, len(x), 50)]
    )


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


@pytest.fixture(scope="module")
def mobilenet_avx2(mobilenet_path: Path) -> calibench.CalibrationResult:
    calibration = [{"input": x} for x in imagenet_preprocess(natural_crops(96, seed=0))]
    return calibench.calibrate(mobilenet_path, calibration, isa="avx2")


def test_avx2_scheme_keeps_mobilenet_accurate_in_exact_arithmetic(
    mobilenet_path: Path, mobilenet_avx2: calibench.CalibrationResult
) -> None:
    report = mobilenet_avx2.report.to_dict()
    assert report["isa"]["target"] == "avx2" and report["isa"]["detected"] is False
    schemes = {layer["scheme"] for layer in report["overflow"]}
    assert len(report["overflow"]) == 36  # 52 Convs − 17 depthwise + the classifier
    assert schemes <= {"u8s8", "w7", "a7", "u8u8"} and schemes - {"u8s8"}
    weights = _weights(mobilenet_avx2.model)
    for layer in report["overflow"]:
        stem = f"{layer['layer']}::weight"
        if layer["scheme"] == "w7":
            assert np.abs(weights[f"{stem}::i8"]).max() <= 63
        if layer["scheme"] == "u8u8":
            assert weights[f"{stem}::u8"].dtype == np.uint8
            assert (weights[f"{stem}::zero_point"] == 128).all()
    rows = {row.name: row for row in mobilenet_avx2.report.layers}
    assert all(rows[layer["layer"]].precision == "INT8" for layer in report["overflow"])
    assert any(row.scheme == "u8u8" and row.scheme_note for row in rows.values())
    held_out = imagenet_preprocess(natural_crops(300, seed=99))
    fp32 = _top1(_run(mobilenet_path, held_out))
    exact = _top1(_run(mobilenet_avx2.model, held_out, exact=True))
    assert (exact == fp32).mean() >= 0.85


@needs_avx2_cpu
def test_on_avx2_kernels_the_safe_scheme_holds_and_the_plain_one_saturates(
    mobilenet_path: Path, mobilenet_avx2: calibench.CalibrationResult, tmp_path: Path
) -> None:
    calibration = [{"input": x} for x in imagenet_preprocess(natural_crops(96, seed=0))]
    plain = calibench.calibrate(mobilenet_path, calibration, isa="vnni", placement="rule")
    held_out = imagenet_preprocess(natural_crops(40, seed=99))
    fp32 = _top1(_run(mobilenet_path, held_out))
    agreements = {}
    for name, result in (("avx2", mobilenet_avx2), ("vnni", plain)):
        path = result.save(tmp_path / f"{name}.onnx")
        kernels = _top1(run_on_avx2(path, {"input": held_out}, tmp_path)[0])
        exact = _top1(_run(result.model, held_out, exact=True))
        agreements[name] = ((kernels == fp32).mean(), (exact == fp32).mean())
    safe_kernels, safe_exact = agreements["avx2"]
    plain_kernels, plain_exact = agreements["vnni"]
    assert safe_kernels >= safe_exact - 0.05 and safe_kernels >= 0.8, agreements
    assert plain_kernels < plain_exact - 0.1, agreements  # the saturation the scheme avoids


@needs_avx2_cpu
def test_fashion_cnn_on_avx2_kernels_loses_under_one_point(tmp_path: Path) -> None:
    model = build_fashion_cnn(Path("build/test-models/fashion_cnn.onnx"))
    train_images, _ = load_fashion_mnist("train")
    data = tmp_path / "calibration.npz"
    np.savez(data, input=to_model_input(train_images[::200]))
    result = calibench.calibrate(model, data, isa="avx2")
    path = result.save(tmp_path / "fashion-avx2.onnx")
    images, labels = load_fashion_mnist("test")
    x = to_model_input(images[:1000])
    fp32 = (_top1(_run(model, x)) == labels[:1000]).mean() * 100
    kernels = (_top1(run_on_avx2(path, {"input": x}, tmp_path)[0]) == labels[:1000]).mean() * 100
    assert fp32 - kernels < 1.0, (fp32, kernels)


def test_exact_isas_change_nothing(tiny_cnn_path: Path, tiny_data: Path) -> None:
    result = calibench.calibrate(tiny_cnn_path, tiny_data, isa="vnni")
    report = result.report.to_dict()
    assert report["overflow"] == [] and report["isa"]["label"] == "VNNI"
    meta = {p.key: p.value for p in result.model.metadata_props}
    assert meta["calibench.isa"] == "vnni"
    assert all(row.scheme is None for row in result.report.layers)
    check = report["kernel_check"]
    assert check["samples"] > 0 and check["integer_vs_exact_sqnr_db"] is not None
    if not host_cpu().isa.saturates:  # on an AVX2 machine this VNNI model may saturate
        assert check["ok"], check


def _saturating_data(path: Path) -> Path:
    rng = np.random.default_rng(1)
    np.savez(path, input=rng.normal(0, 3, (32, 3, 32, 32)).astype(np.float32))
    return path


def test_saturation_left_in_place_is_reported_and_strict_refuses(
    tiny_cnn_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _saturating_data(tmp_path / "loud.npz")
    found = calibench.calibrate(tiny_cnn_path, data, isa="avx2").report.to_dict()["overflow"]
    assert any(layer["saturated_fraction"] > 0 for layer in found), found
    # Without the scheme choice the AVX2 model keeps its saturating layers: the check names them.
    monkeypatch.setattr(
        "calibench.calibration.default.choose_schemes",
        lambda fp32, plan, params, *args: params,
    )
    report = calibench.calibrate(tiny_cnn_path, data, isa="avx2").report.to_dict()
    check = report["kernel_check"]
    assert not check["ok"] and check["saturating_layers"]
    assert "would saturate in" in check["warnings"][0] or "differ from" in check["warnings"][0]
    with pytest.raises(KernelCheckError, match="--strict"):
        calibench.calibrate(tiny_cnn_path, data, isa="avx2", strict=True)
    out = tmp_path / "int8.onnx"
    code = main(
        [
            "calibrate",
            str(tiny_cnn_path),
            "-d",
            str(data),
            "--isa",
            "avx2",
            "--strict",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 6 and not out.exists()


def test_candidates_are_measured_against_the_float_layer(
    tiny_cnn_path: Path, tmp_path: Path
) -> None:
    data = _saturating_data(tmp_path / "loud.npz")
    found = calibench.calibrate(tiny_cnn_path, data, isa="avx2").report.to_dict()["overflow"]
    for layer in found:
        sqnr = layer["candidates_sqnr_db"]
        assert set(sqnr) == {"w8", "w7", "a7"}
        assert sqnr["w8"] >= sqnr["w7"] - 0.5  # 7 bits never beat 8 by much
        if layer["scheme"] == "w7":
            assert sqnr["w7"] >= sqnr["w8"] - overflow.TOLERANCE_DB


def test_infer_warns_when_the_cpu_saturates_a_vnni_model(
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "vnni.onnx"
    assert (
        main(
            [
                "calibrate",
                str(tiny_cnn_path),
                "-d",
                str(tiny_data),
                "--isa",
                "vnni",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    monkeypatch.setenv("CALIBENCH_CPU_FLAGS", "avx2")
    assert host_cpu().isa.value == "avx2"
    main(
        [
            "infer",
            str(out),
            "-d",
            str(tiny_data),
            "--seconds",
            "0.2",
            "-q",
            "--workspace",
            str(tmp_path / "ws"),
        ]
    )
    err = capsys.readouterr().err
    assert "calibrated for VNNI; this CPU has AVX2 without VNNI" in err
    assert "recalibrate with --isa avx2" in err


def test_keep_fp32_by_name_type_or_regex(tiny_cnn_path: Path, tiny_data: Path) -> None:
    result = calibench.calibrate(
        tiny_cnn_path, tiny_data, keep_fp32=["/fc/Gemm", "Add"], placement="rule"
    )
    rows = {row.name: row for row in result.report.layers}
    assert rows["/fc/Gemm"].precision == "FP32" and rows["/Add"].precision == "FP32"
    assert rows["/fc/Gemm"].reason == "kept FP32 by you (--keep-fp32 /fc/Gemm)"
    assert rows["/c1/c1.0/Conv"].precision == "INT8"
    regex = calibench.calibrate(
        tiny_cnn_path, tiny_data, keep_fp32=[r"/c[23]/.*Conv"], placement="rule"
    )
    rows = {row.name: row for row in regex.report.layers}
    assert rows["/c2/c2.0/Conv"].precision == rows["/c3/c3.0/Conv"].precision == "FP32"
    assert rows["/c1/c1.0/Conv"].precision == "INT8"


def test_keep_fp32_of_a_folded_activation_keeps_its_layer(
    tiny_cnn_path: Path, tiny_data: Path
) -> None:
    result = calibench.calibrate(
        tiny_cnn_path, tiny_data, keep_fp32=["/c2/c2.2/Relu"], placement="rule"
    )
    rows = {row.name: row for row in result.report.layers}
    assert rows["/c2/c2.0/Conv"].precision == "FP32"
    assert rows["/c2/c2.0/Conv"].reason == "kept FP32 by you (--keep-fp32 /c2/c2.2/Relu)"
    with pytest.raises(ConfigError, match="matches only layers that do not run in INT8 anyway"):
        calibench.calibrate(tiny_cnn_path, tiny_data, keep_fp32="MaxPool")


def test_keep_fp32_that_matches_nothing_is_refused(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "int8.onnx"
    code = main(
        [
            "calibrate",
            str(tiny_cnn_path),
            "-d",
            str(tiny_data),
            "--keep-fp32",
            "/nope",
            "-o",
            str(out),
            "-q",
        ]
    )
    assert code == 5 and not out.exists()
    assert "--keep-fp32 '/nope' matches no layer" in capsys.readouterr().err


def test_sensitivity_ranks_layers_with_time_and_saturation(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _saturating_data(tmp_path / "loud.npz")
    html = tmp_path / "sensitivity.html"
    code = main(
        [
            "sensitivity",
            str(tiny_cnn_path),
            "-d",
            str(data),
            "--isa",
            "avx2",
            "--json",
            "--html",
            str(html),
            "-q",
        ]
    )
    assert code == 0
    ranking = json.loads(capsys.readouterr().out)
    assert ranking["measure"] == "output SQNR (dB)" and ranking["isa"] == "avx2"
    layers = ranking["layers"]
    assert {layer["layer"] for layer in layers} >= {"/c1/c1.0/Conv", "/fc/Gemm"}
    gains = [layer["gain"] for layer in layers]
    assert gains == sorted(gains, reverse=True)
    assert any(layer["saturation_sqnr_db"] is not None for layer in layers)
    assert all(layer["fp32_ms"] is None or layer["fp32_ms"] >= 0 for layer in layers)
    page = html.read_text()
    assert "<svg" in page and "/c1/c1.0/Conv" in page


def test_sensitivity_scores_annotated_data_by_its_metric(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3, 32, 32)).astype(np.float32)
    labels = make_session(tiny_cnn_path).run(None, {"input": x})[0].argmax(1)
    data = tmp_path / "labelled.npz"
    np.savez(data, input=x, labels=labels)
    assert (
        main(
            [
                "dataset",
                "import",
                str(data),
                "--name",
                "labelled",
                "--workspace",
                str(tmp_path / "ws"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "sensitivity",
            str(tiny_cnn_path),
            "-d",
            str(data),
            "--validation-dataset",
            "labelled",
            "--workspace",
            str(tmp_path / "ws"),
            "--json",
            "-q",
        ]
    )
    assert code == 0
    ranking = json.loads(capsys.readouterr().out)
    assert ranking["measure"] == "top1" and ranking["fp32"] == 100.0


def test_sensitivity_scores_are_those_of_the_reverted_models(
    tiny_cnn_path: Path, tmp_path: Path
) -> None:
    """Each layer's score is its reverted model's metric on the samples, computed in threads."""
    from calibench.api import _metric_for
    from calibench.calibration.default import run_default
    from calibench.calibration.sensitivity import run_sensitivity
    from calibench.cli.datasets import resolve_dataset
    from calibench.config import CalibrationConfig
    from calibench.data.open import open_for_model
    from calibench.model.load import load_model
    from calibench.passes.insert_qdq import insert_qdq
    from calibench.passes.placement import revert_layers
    from calibench.runtime.inputs import input_specs

    rng = np.random.default_rng(4)
    x = rng.normal(size=(48, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, 48)  # random labels: most reverts change the figure
    np.savez(tmp_path / "s.npz", input=x, labels=labels)
    workspace = tmp_path / "ws"
    assert (
        main(
            [
                "dataset",
                "import",
                str(tmp_path / "s.npz"),
                "--name",
                "s",
                "--workspace",
                str(workspace),
            ]
        )
        == 0
    )
    model = load_model(tiny_cnn_path)
    data, _ = open_for_model(resolve_dataset("s", workspace), input_specs(model), None, "tiny")
    config = CalibrationConfig(isa="vnni")
    report = run_sensitivity(model, "tiny", data, data, _metric_for(data, None), config)
    default = run_default(model, data, config)
    for layer in report.layers:
        plan = revert_layers(default.plan, {layer.name: "check"})
        reverted = insert_qdq(default.fp32, plan, default.params, bias_shifts=default.shifts)
        top1 = (_top1(make_session(reverted).run(None, {"input": x})[0]) == labels).mean()
        assert layer.reverted_score == pytest.approx(100 * top1), layer.name
