"""The command line under hostile input: every refusal is one line, the right exit code, and
nothing left on disk."""

import io
import json
import os
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from calibench.cli import main


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, err


def _calibrate(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["calibrate", str(model), "-d", str(data), "-o", str(out), "--quiet", *extra]


def _nothing_beside(out: Path) -> None:
    left = [p.name for p in out.parent.iterdir() if p.name.startswith(out.name)]
    assert left == [], left


# 1. non-finite calibration data


def test_a_nan_in_the_npz_is_a_dataset_error_naming_sample_and_input(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(0).random((10, 3, 32, 32), dtype=np.float32)
    x[3, 0, 0, 0] = np.nan
    data = tmp_path / "onenan.npz"
    np.savez(data, input=x)
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, data, out), capsys)
    assert code == 4 and "sample 3" in err and "'input'" in err and "NaN" in err
    _nothing_beside(out)


def test_huge_finite_values_are_data(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    x[1, 0, 0, 0] = 3e38
    data = tmp_path / "huge.npz"
    np.savez(data, input=x)
    out = tmp_path / "o.onnx"
    code = main(_calibrate(tiny_cnn_path, data, out, "--json"))
    capsys.readouterr()
    assert code == 0 and out.is_file()


@pytest.mark.parametrize(
    ("option", "value", "name"),
    [
        ("--mean", "nan,0,0", "mean"),
        ("--std", "1,inf,1", "std"),
        ("--std", "0,1,1", "std"),
        ("--scale", "nan", "scale"),
        ("--max-drop", "nan", "--max-drop"),
        ("--resize", "-5", "resize"),
        ("--resize", "100000", "resize"),
        ("--resize", "0x224", "resize"),
        ("--crop", "0", "crop"),
        ("--crop", "224x99999", "crop"),
        ("--threads", "-1", "--threads"),
        ("--threads", "0", "--threads"),
        ("--batch-size", "0", "--batch-size"),
        ("--seed", "-1", "seed"),
    ],
)
def test_bad_numbers_are_exit_5_naming_the_option(
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    name: str,
) -> None:
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, out, f"{option}={value}"), capsys)
    assert code == 5 and name in err, err
    _nothing_beside(out)


@pytest.mark.parametrize(
    "args",
    [
        ["--batch", "0"],
        ["--streams", "-2"],
        ["--seconds", "nan"],
        ["--resize", "100000"],
    ],
)
def test_infer_refuses_bad_numbers_with_exit_5(
    tiny_cnn_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, err = _refused(["infer", str(tiny_cnn_path), "-d", str(tiny_data), *args], capsys)
    assert code == 5 and args[0] in err, err


# 2. .npz headers


def test_a_tiny_npz_declaring_a_trillion_elements_is_a_dataset_error(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (10**12,)}
    )
    data = tmp_path / "bomb.npz"
    with zipfile.ZipFile(data, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("input.npy", header.getvalue())
    assert data.stat().st_size < 300
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, data, out), capsys)
    assert code == 4 and str(data) in err and "'input'" in err
    _nothing_beside(out)


# 4. decompression bombs are unreadable images


def _bomb_png(path: Path) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", 200_000, 200_000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
    )


def test_a_bomb_png_in_an_image_folder_is_skipped_and_counted(
    tiny_cnn_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i * 50, 90, 20)).save(folder / f"{i}.png")
    _bomb_png(folder / "3-bomb.png")
    out = tmp_path / "o.onnx"
    code = main(_calibrate(tiny_cnn_path, folder, out, "--json"))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["subset"]["unreadable_skipped"] == 1


# 5. archive names that are not UTF-8


def test_a_tar_member_named_in_raw_bytes_is_a_dataset_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "x.tar"
    with tarfile.open(
        archive, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name in (b"\xff\xfe.png".decode("utf-8", "surrogateescape"), "ok.png"):
            png = io.BytesIO()
            Image.new("RGB", (8, 8)).save(png, "PNG")
            info = tarfile.TarInfo(name)
            info.size = len(png.getvalue())
            tar.addfile(info, io.BytesIO(png.getvalue()))
    workspace = tmp_path / "ws"
    code, err = _refused(["dataset", "import", str(archive), "--workspace", str(workspace)], capsys)
    assert code == 4 and "UTF-8" in err and "x.tar" in err
    assert not list((workspace / "datasets").glob("*")) if workspace.exists() else True


# 6. usage errors, outputs, odd models


@pytest.mark.parametrize(
    "args",
    [
        ["calibrate", "m.onnx", "-d", "x.npz", "--bogus"],
        ["calibrate", "m.onnx"],
        ["calibrate", "m.onnx", "-d", "x.npz", "--seed", "abc"],
        ["calibrate", "m.onnx", "-d", "x.npz", "--preset", "fast"],
        ["nosuchcommand"],
        [],
    ],
)
def test_usage_errors_exit_5_with_argparse_words(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args)
    err = capsys.readouterr().err
    assert code == 5 and "usage:" in err and "error:" in err


def test_help_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--help"]) == 0
    assert "--dataset" in capsys.readouterr().out


def test_an_output_that_is_a_folder_is_exit_5_and_leaves_nothing(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "outdir"
    out.mkdir()
    code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, out), capsys)
    assert code == 5 and "outdir" in err and "folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"]
    assert list(out.iterdir()) == []


def test_an_output_under_a_file_is_refused_before_calibrating(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, out), capsys)
    assert code == 5 and "afile" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_a_clear_error(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, folder / "o.onnx"), capsys)
        assert code == 5 and "ro" in err
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_folder_refusing_writes_is_a_clear_error_even_for_root(
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import calibench.cli.common as common

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(common.tempfile, "mkstemp", refuse)
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, out), capsys)
    assert code == 5 and "Permission denied" in err and str(out) in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--report", "--save-preprocess"])
@pytest.mark.parametrize("where", ["folder", "under a file"])
def test_report_and_preprocess_files_are_checked_before_the_model_is_written(
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    where: str,
) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    target = tmp_path / "adir" if where == "folder" else tmp_path / "afile" / "r.json"
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(tiny_cnn_path, tiny_data, out, option, str(target)), capsys)
    assert code == 5 and option in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"]


def test_a_late_failure_writing_the_report_leaves_no_model(
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import calibench.cli.calibrate as cli_calibrate

    real = cli_calibrate.os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith("r.json"):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(cli_calibrate.os, "replace", failing_replace)
    out = tmp_path / "o.onnx"
    args = _calibrate(tiny_cnn_path, tiny_data, out, "--report", str(tmp_path / "r.json"))
    code, err = _refused([*args, "--subset", "4"], capsys)
    assert code == 5 and "r.json" in err and "No space left" in err
    assert list(tmp_path.iterdir()) == []


def test_report_and_model_are_both_written_when_all_goes_well(
    tiny_cnn_path: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "o.onnx", tmp_path / "r.json"
    code = main(_calibrate(tiny_cnn_path, tiny_data, out, "--report", str(report), "--subset", "4"))
    capsys.readouterr()
    assert code == 0 and out.is_file() and json.loads(report.read_text())["subset"]["size"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.onnx", "r.json"]


def test_a_model_without_inputs_is_a_clear_error(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    const = helper.make_node(
        "Constant", [], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
    )
    graph = helper.make_graph(
        [const, helper.make_node("Identity", ["c"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "noinput.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(model))
    out = tmp_path / "o.onnx"
    code, err = _refused(_calibrate(model, tiny_data, out), capsys)
    assert code in (3, 4) and "no inputs" in err
    _nothing_beside(out)
