from __future__ import annotations

from pathlib import Path

from calibench.cli import build_parser
from calibench.cli.remote import remote_argv
from calibench.targets.assets import Input, Output


def test_the_parsed_options_come_back_as_a_command_line() -> None:
    """In the parser's order; defaults left out, local-only options (--target, --workspace,
    -q) dropped, the files marked for upload and download."""
    args = build_parser().parse_args(
        ["calibrate", "m.onnx", "-d", "data", "-o", "out/m8.onnx", "--method", "accuracy-aware",
         "--max-drop", "0.5", "--keep-fp32", "Conv", "--keep-fp32", "/fc", "--no-bias-correction",
         "--target", "edge", "--workspace", "/ws", "-q"]
    )  # fmt: skip
    argv = remote_argv(
        args.command_parser,
        args,
        inputs={"model": Path("m.onnx"), "dataset": Path("/abs/data"), "preprocess": None},
        outputs={"output": Path("out/m8.onnx"), "report": None},
    )
    assert argv == [
        Input(Path("m.onnx")),
        "--dataset", Input(Path("/abs/data")),
        "--output", Output(Path("out/m8.onnx")),
        "--method", "accuracy-aware",
        "--max-drop", "0.5",
        "--no-bias-correction",
        "--keep-fp32", "Conv", "--keep-fp32", "/fc",
    ]  # fmt: skip
