"""The ``calibench`` command line.

Errors are one line (``calibench: error: …``) with a non-zero exit code; ``--debug`` shows the
traceback. Progress goes to stderr, results to stdout, so ``--json`` output can be piped.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from calibench.calibration.default import ProgressCallback
from calibench.config import CalibrationConfig, Subset
from calibench.data.preprocess import Preprocess
from calibench.errors import CalibenchError, ConfigError

STAGES = ("statistics", "quantization", "bias correction")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    err = Console(stderr=True)
    try:
        return int(args.run(args))
    except CalibenchError as exc:
        if args.debug:
            traceback.print_exc()
        err.print(f"calibench: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("calibench: interrupted; nothing was written")
        return 130
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        err.print(
            f"calibench: internal error: {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calibench", description="INT8 calibration of FP32 ONNX models for ONNX Runtime."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    cal = sub.add_parser("calibrate", help="FP32 ONNX model → INT8 QDQ ONNX model")
    cal.add_argument("model", type=Path, help="the FP32 .onnx model")
    cal.add_argument(
        "--dataset",
        "-d",
        required=True,
        type=Path,
        help="a folder of images (searched recursively) or an .npz file",
    )
    cal.add_argument(
        "--output",
        "-o",
        type=Path,
        help="where to write the INT8 model (default: MODEL-int8.onnx beside the model)",
    )
    cal.add_argument(
        "--subset",
        default="100%",
        help="calibration subset: a percentage (10%%) or a count (300); default 100%%",
    )
    cal.add_argument("--seed", type=int, default=0, help="seed of the subset choice")
    cal.add_argument(
        "--preset",
        choices=["performance", "mixed"],
        default="performance",
        help="performance: symmetric activations (default); "
        "mixed: asymmetric activations, for signed non-ReLU activations",
    )
    cal.add_argument(
        "--range-estimator",
        choices=["minmax", "percentile", "mse"],
        default="minmax",
        help="how activation ranges are taken (default minmax)",
    )
    cal.add_argument(
        "--no-bias-correction", action="store_true", help="skip bias correction (on by default)"
    )
    cal.add_argument("--batch-size", type=int, default=8, help="batch size of the passes")
    cal.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    pre = cal.add_argument_group("image preprocessing (image folders only)")
    pre.add_argument(
        "--resize", help="short side (256) or exact size (224x224); default: the model's input size"
    )
    pre.add_argument("--crop", help="centre crop (224 or 224x224) after the resize")
    pre.add_argument("--scale", type=float, help="multiply pixels by this first (default 1/255)")
    pre.add_argument(
        "--mean", help="per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406"
    )
    pre.add_argument("--std", help="per-channel std divided by, e.g. 0.229,0.224,0.225")
    pre.add_argument("--bgr", action="store_true", help="feed channels in BGR order")
    pre.add_argument("--layout", choices=["NCHW", "NHWC"], help="default: guessed from the model")
    cal.add_argument("--json", action="store_true", help="print the report as JSON")
    cal.add_argument("--report", type=Path, help="also write the JSON report to this file")
    cal.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    cal.set_defaults(run=_calibrate)

    lay = sub.add_parser("layers", help="the layer table of any model, FP32 or INT8")
    lay.add_argument("model", type=Path)
    lay.add_argument("--json", action="store_true", help="print the table as JSON")
    lay.set_defaults(run=_layers)
    return parser


def _calibrate(args: argparse.Namespace) -> int:
    from calibench.api import calibrate

    config = CalibrationConfig(
        preset=args.preset,
        subset=Subset.parse(args.subset, seed=args.seed),
        range_estimator=args.range_estimator,
        bias_correction=not args.no_bias_correction,
        batch_size=args.batch_size,
    )
    output = args.output or args.model.with_name(args.model.stem + "-int8.onnx")
    if output.resolve() == args.model.resolve():
        raise ConfigError("the output path is the input model; choose another with -o")
    with _progress(quiet=args.quiet) as on_progress:
        result = calibrate(
            args.model,
            args.dataset,
            config=config,
            preprocess=_preprocess_options(args),
            progress=on_progress,
            threads=args.threads,
        )
    path = result.save(output)
    if args.report:
        args.report.write_text(result.report.to_json())
    if args.json:
        data = result.report.to_dict()
        data["output"] = str(path)
        print(json.dumps(data, indent=2))
    else:
        console = _wide_console()
        result.report.render(console)
        console.print(f"INT8 model written to {path}")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from calibench.model.load import load_model
    from calibench.report.calibration import layers_table
    from calibench.report.layers import layer_table
    from calibench.runtime.kernels import kernel_counts

    model = load_model(args.model)
    rows, runtime = layer_table(model)
    if args.json:
        print(
            json.dumps(
                {
                    "model": str(args.model),
                    "layers": [r.to_dict() for r in rows],
                    "kernels": kernel_counts(runtime),
                },
                indent=2,
            )
        )
        return 0
    console = _wide_console()
    console.print(layers_table(rows, title=f"Layers of {args.model.name}"))
    int8 = sum(1 for r in rows if r.precision == "INT8")
    console.print(f"{int8} of {len(rows)} layers run in INT8 in ONNX Runtime.")
    return 0


def _wide_console() -> Console:
    """Layer tables need room: never narrower than 150 columns, even in a pipe."""
    return Console(width=max(Console().width, 150))


def _preprocess_options(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    if args.resize:
        options["resize"] = _size(args.resize, allow_single=True)
    if args.crop:
        crop = _size(args.crop, allow_single=True)
        options["crop"] = (crop, crop) if isinstance(crop, int) else crop
    if args.scale is not None:
        options["scale"] = args.scale
    if args.mean:
        options["mean"] = _floats(args.mean, "--mean")
    if args.std:
        options["std"] = _floats(args.std, "--std")
    if args.bgr:
        options["color"] = "BGR"
    if args.layout:
        options["layout"] = args.layout
    Preprocess(**{k: v for k, v in options.items() if k != "resize"})  # type: ignore[arg-type]
    return options


def _size(text: str, allow_single: bool) -> int | tuple[int, int]:
    try:
        if "x" in text:
            h, w = text.lower().split("x")
            return int(h), int(w)
        if allow_single:
            return int(text)
    except ValueError:
        pass
    raise ConfigError(f"not a size: {text!r} (write 256 or 224x224)")


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers, got {text!r}") from None


@contextmanager
def _progress(quiet: bool) -> Iterator[ProgressCallback | None]:
    if quiet:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(stage, total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield on_progress


if __name__ == "__main__":
    sys.exit(main())
