"""``calibench calibrate`` and ``calibench layers``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from calibench._files import temp_beside
from calibench.calibration.distributed.options import RayShards
from calibench.cli.common import (
    add_metric_option,
    add_preprocess_options,
    check_distinct,
    check_writable,
    finite_float,
    positive_int,
    preprocess_options,
    progress_bars,
    wide_console,
)
from calibench.cli.remote import add_target_option, run_on_target
from calibench.cli.workflow import add_runtime_option, check_runtime
from calibench.config import (
    PLACEMENT_BUDGET_S,
    CalibrationConfig,
    DropType,
    Method,
    Placement,
    Preset,
    RangeEstimator,
    Subset,
)
from calibench.data.preprocess import Preprocess, preprocess_json
from calibench.errors import ConfigError
from calibench.runtime.isa import ISA_CHOICES
from calibench.runtime.memory import parse_size


def register(sub: Any) -> None:
    cal = sub.add_parser("calibrate", help="FP32 ONNX model → INT8 QDQ ONNX model")
    cal.add_argument("model", type=Path, help="the FP32 .onnx model")
    cal.add_argument(
        "--dataset",
        "-d",
        required=True,
        help="an imported dataset (folder or name), a folder of images or an .npz",
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
        choices=[p.value for p in Preset],
        default=Preset.PERFORMANCE.value,
        help="performance: symmetric activations (default); "
        "mixed: asymmetric activations, for signed non-ReLU activations",
    )
    cal.add_argument(
        "--range-estimator",
        choices=[r.value for r in RangeEstimator],
        default=RangeEstimator.MINMAX.value,
        help="how activation ranges are taken (default minmax)",
    )
    cal.add_argument(
        "--method",
        choices=[m.value for m in Method],
        default=Method.DEFAULT.value,
        help="default: every layer that can run in INT8 does; accuracy-aware: the "
        "fastest model within --max-drop of FP32's accuracy",
    )
    cal.add_argument(
        "--max-drop",
        type=finite_float,
        help="accuracy-aware: the largest accuracy drop you accept, in points of "
        "the metric (0.5 = half a point of top-1)",
    )
    cal.add_argument(
        "--drop-type",
        choices=[d.value for d in DropType],
        default=DropType.ABSOLUTE.value,
        help="relative: --max-drop in percent of the FP32 figure",
    )
    cal.add_argument(
        "--validation-dataset",
        help="accuracy-aware: annotated data accuracy is measured on "
        "(default: --dataset; separate data avoids overfitting)",
    )
    cal.add_argument("--validation-subset", help="accuracy-aware: 10%% or a count (default all)")
    add_metric_option(cal, "accuracy-aware: ")
    cal.add_argument(
        "--no-bias-correction", action="store_true", help="skip bias correction (on by default)"
    )
    cal.add_argument(
        "--isa",
        default="auto",
        choices=ISA_CHOICES,
        help="the ISA class the model will run on (default auto: this CPU). avx2/avx512 "
        "(no VNNI): ONNX Runtime's u8×s8 kernels saturate there, so layers get an "
        "overflow-safe scheme",
    )
    add_runtime_option(
        cal,
        "the runtime the model is made for: onnxruntime (default) or "
        "openvino (quantizers on the inputs of its INT8 layers, measured placement timed "
        "on OpenVINO; the layer table from OpenVINO's runtime graph)",
    )
    cal.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="PATTERN",
        help="keep layers in FP32: a layer name, an op type (Conv) or a regex over the names; "
        "repeatable",
    )
    cal.add_argument(
        "--placement",
        choices=[p.value for p in Placement],
        default=Placement.MEASURED.value,
        help="measured (default): time each INT8 layer against FP32 on this CPU and keep FP32 "
        "where INT8 is not faster; rule: every layer that can run in INT8 does",
    )
    cal.add_argument(
        "--placement-budget",
        type=finite_float,
        default=PLACEMENT_BUDGET_S,
        metavar="SECONDS",
        help=f"measured placement: seconds it may spend timing (default {PLACEMENT_BUDGET_S:g})",
    )
    cal.add_argument(
        "--inference-batch",
        type=positive_int,
        default=1,
        help="measured placement: the batch size the model will run at (default 1)",
    )
    cal.add_argument(
        "--inference-threads",
        type=positive_int,
        help="measured placement: the threads it will run with (default: --threads)",
    )
    cal.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="memory the calibration passes may use, e.g. 4G or 512M (default: a quarter of "
        "this machine's memory); batches are cut to fit",
    )
    cal.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 6, nothing written) when the integer kernels do not match the "
        "exact INT8 arithmetic",
    )
    cal.add_argument("--batch-size", type=positive_int, default=8, help="batch size of the passes")
    cal.add_argument(
        "--threads", type=positive_int, help="ONNX Runtime threads (default: all cores)"
    )
    cal.add_argument(
        "--workspace",
        type=Path,
        help="where imported datasets live (default: $CALIBENCH_WORKSPACE or ~/.calibench)",
    )
    add_preprocess_options(cal)
    add_target_option(cal)
    cal.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the statistics pass and AccuracyAware's evaluations on a Ray cluster: auto "
        "or HOST:PORT of its head (needs calibench[ray]); the result is the local one",
    )
    cal.add_argument(
        "--ray-workers",
        type=positive_int,
        metavar="N",
        help="with --ray: worker processes (default: one per CPU of the cluster)",
    )
    cal.add_argument("--json", action="store_true", help="print the report as JSON")
    cal.add_argument("--report", type=Path, help="also write the JSON report to this file")
    cal.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    cal.set_defaults(run=calibrate_command, command_parser=cal)

    lay = sub.add_parser("layers", help="the layer table of any model, FP32 or INT8")
    lay.add_argument("model", type=Path)
    lay.add_argument("--json", action="store_true", help="print the table as JSON")
    lay.set_defaults(run=layers_command)


def calibrate_command(args: argparse.Namespace) -> int:
    from calibench.api import calibrate
    from calibench.cli.datasets import resolve_dataset

    config = CalibrationConfig(
        preset=args.preset,
        subset=Subset.parse(args.subset, seed=args.seed),
        range_estimator=args.range_estimator,
        bias_correction=not args.no_bias_correction,
        batch_size=args.batch_size,
        method=args.method,
        max_drop=args.max_drop,
        drop_type=args.drop_type,
        validation_subset=Subset.parse(args.validation_subset, seed=args.seed)
        if args.validation_subset
        else None,
        metric=args.metric,
        isa=args.isa,
        keep_fp32=tuple(args.keep_fp32),
        memory_limit=parse_size(args.memory_limit) if args.memory_limit else None,
        placement=args.placement,
        placement_budget_s=args.placement_budget,
        placement_batch=args.inference_batch,
        placement_threads=args.inference_threads,
        runtime=check_runtime(args),
    )
    output = args.output or args.model.with_name(args.model.stem + "-int8.onnx")
    if output.resolve() == args.model.resolve():
        raise ConfigError("the output path is the input model; choose another with -o")
    preprocess = preprocess_options(args)
    outputs = {"-o/--output": output, "--report": args.report}
    outputs["--save-preprocess"] = args.save_preprocess
    check_distinct(outputs)
    for option, target in outputs.items():
        check_writable(target, option)
    dataset = resolve_dataset(args.dataset, args.workspace)
    validation = (
        resolve_dataset(args.validation_dataset, args.workspace)
        if args.validation_dataset
        else None
    )
    if args.ray and args.target:
        raise ConfigError("--ray and --target cannot be combined: choose where to calibrate")
    if args.ray_workers and not args.ray:
        raise ConfigError("--ray-workers goes with --ray ADDRESS")
    executor = RayShards(args.ray, workers=args.ray_workers) if args.ray else None
    if args.target:
        return run_on_target(
            args,
            inputs={
                "model": args.model,
                "dataset": dataset,
                "validation_dataset": validation,
                "preprocess": args.preprocess,
            },
            outputs={
                "output": output,
                "report": args.report,
                "save_preprocess": args.save_preprocess,
            },
            phase="calibration",
        )
    with progress_bars(quiet=args.quiet) as on_progress:
        result = calibrate(
            args.model,
            dataset,
            config=config,
            validation=validation,
            preprocess=preprocess,
            progress=on_progress,
            threads=args.threads,
            strict=args.strict,
            executor=executor,
        )
    extra: dict[str, tuple[Path, str]] = {}
    if args.report:
        extra["--report"] = (args.report, result.report.to_json())
    if args.save_preprocess and result.report.preprocess:
        used = Preprocess(**result.report.preprocess)
        extra["--save-preprocess"] = (args.save_preprocess, preprocess_json(used))
    path = _write_all(result, output, extra)
    if args.json:
        data = result.report.to_dict()
        data["output"] = str(path)
        print(json.dumps(data, indent=2))
    else:
        console = wide_console()
        result.report.render(console)
        console.print(f"INT8 model written to {path}")
        verdict = (result.report.accuracy_aware or {}).get("verdict")
        if verdict:  # the last line: what the user must not miss
            console.print(f"[bold red]{verdict}[/]")
    return 0


def _write_all(result: Any, output: Path, extra: dict[str, tuple[Path, str]]) -> Path:
    """Write the model and the ``extra`` text files (option → path, text) all or nothing: the
    texts go to temporary files beside their targets first, then the model, then each text is
    renamed into place. A failure removes whatever was written and names the file."""
    staged: list[tuple[str, Path, Path]] = []
    placed: list[Path] = []
    option, target = "-o/--output", output
    try:
        for option, (target, text) in extra.items():
            temp = temp_beside(target)
            staged.append((option, target, temp))
            temp.write_text(text, encoding="utf-8")
        option, target = "-o/--output", output
        path = Path(result.save(output))
        placed.append(path)
        for option, target, temp in staged:  # noqa: B007 (named in the error below)
            os.replace(temp, target)
            placed.append(target)
    except OSError as exc:
        if placed:  # the model is out: its weights file too, when it has one
            placed.append(output.with_name(output.name + ".data"))
        for written in [staged_temp for _, _, staged_temp in staged] + placed:
            with contextlib.suppress(OSError):
                written.unlink()
        raise ConfigError(
            f"cannot write {option} {target}: {exc.strerror or exc}; nothing was written"
        ) from exc
    return path


def layers_command(args: argparse.Namespace) -> int:
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
    console = wide_console()
    console.print(layers_table(rows, title=f"Layers of {args.model.name}"))
    int8 = sum(1 for r in rows if r.precision == "INT8")
    console.print(f"{int8} of {len(rows)} layers run in INT8 in ONNX Runtime.")
    return 0
