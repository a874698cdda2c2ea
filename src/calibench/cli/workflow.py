"""``calibench infer`` and ``calibench compare``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from calibench.cli.common import (
    add_metric_option,
    add_preprocess_options,
    check_writable,
    positive_float,
    positive_int,
    preprocess_options,
    progress_bars,
    wide_console,
)
from calibench.cli.remote import add_target_option, run_on_target
from calibench.config import Subset
from calibench.data.preprocess import Preprocess, save_preprocess
from calibench.runtime.backend import RUNTIME_CHOICES, Runtime
from calibench.workflow.cache import default_workspace
from calibench.workflow.performance import PerfSettings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        "-d",
        required=True,
        help="an imported dataset (folder or name), a folder of images or an .npz",
    )
    add_metric_option(parser)
    parser.add_argument("--subset", help="evaluate on a subset: 10%% or a count")
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    parser.add_argument(
        "--streams", type=positive_int, default=1, help="parallel streams (default 1)"
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=3.0,
        help="how long to measure performance (default 3)",
    )
    add_runtime_option(parser)
    parser.add_argument(
        "--workspace", type=Path, help="datasets and cached results (default: ~/.calibench)"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute, do not reuse")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    add_preprocess_options(parser)
    add_target_option(parser)


RUNTIME_HELP = (
    "the runtime that runs the models: onnxruntime (default) or openvino (OpenVINO's CPU "
    "plugin; pip install calibench[openvino])"
)


def add_runtime_option(parser: argparse.ArgumentParser, text: str = RUNTIME_HELP) -> None:
    parser.add_argument(
        "--runtime", choices=RUNTIME_CHOICES, default=Runtime.ONNXRUNTIME.value, help=text
    )


def check_runtime(args: argparse.Namespace) -> Runtime:
    """The chosen runtime, refused before any work when it is not installed."""
    runtime = Runtime.parse(getattr(args, "runtime", None))
    if runtime is Runtime.OPENVINO and not getattr(args, "target", None):
        from calibench.runtime.openvino import import_openvino

        import_openvino()
    return runtime


def register(sub: Any) -> None:
    infer = sub.add_parser("infer", help="accuracy and performance of a model on a dataset")
    infer.add_argument("model", type=Path)
    _common(infer)
    infer.set_defaults(run=infer_command, command_parser=infer)
    compare = sub.add_parser("compare", help="an INT8 model beside its FP32 parent")
    compare.add_argument("fp32", type=Path)
    compare.add_argument("int8", type=Path)
    _common(compare)
    compare.add_argument("--html", type=Path, help="write a self-contained HTML report")
    compare.add_argument(
        "--samples",
        type=positive_int,
        default=8,
        help="samples for the per-layer error (default 8)",
    )
    compare.set_defaults(run=compare_command, command_parser=compare)


def _run(model: Path, args: argparse.Namespace, on_progress: Any) -> Any:
    from calibench.cli.datasets import resolve_dataset
    from calibench.workflow.infer import run_inference

    return run_inference(
        model,
        resolve_dataset(args.dataset, args.workspace),
        metric=args.metric,
        perf=PerfSettings(
            batch=args.batch,
            streams=args.streams,
            seconds=args.seconds,
            runtime=Runtime.parse(args.runtime),
        ),
        preprocess=preprocess_options(args),
        subset=Subset.parse(args.subset) if args.subset else None,
        workspace=args.workspace or default_workspace(),
        use_cache=not args.no_cache,
        progress=on_progress,
    )


def warn_isa(*models: Path) -> None:
    """Tell the user when a model was calibrated for an ISA class this CPU computes wrongly."""
    import sys

    import onnx

    from calibench.runtime.isa import host_cpu, isa_of_model, mismatch_warning

    host = host_cpu().isa
    for model in models:
        try:
            proto = onnx.load(str(model), load_external_data=False)
        except Exception:
            continue  # the command itself reports an unreadable model
        metadata = {p.key: p.value for p in proto.metadata_props}
        warning = mismatch_warning(isa_of_model(metadata, proto.producer_name), host)
        if warning:
            print(f"calibench: warning: {model.name}: {warning}", file=sys.stderr)


def infer_command(args: argparse.Namespace) -> int:
    from calibench.cli.datasets import resolve_dataset

    preprocess_options(args)  # refuse bad preprocessing options before any work
    check_writable(args.save_preprocess, "--save-preprocess")
    check_runtime(args)
    if args.target:
        return run_on_target(
            args,
            inputs={
                "model": args.model,
                "dataset": resolve_dataset(args.dataset, args.workspace),
                "preprocess": args.preprocess,
            },
            outputs={"save_preprocess": args.save_preprocess},
            phase="inference",
        )
    warn_isa(args.model)
    with progress_bars(args.quiet) as on_progress:
        report = _run(args.model, args, on_progress)
    if args.save_preprocess and report.preprocess:
        save_preprocess(Preprocess(**report.preprocess), args.save_preprocess)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        report.render(wide_console())
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from calibench.cli.datasets import resolve_dataset
    from calibench.report.compare import render_comparison
    from calibench.workflow.compare import run_compare

    preprocess_options(args)
    check_writable(args.html, "--html")
    check_runtime(args)
    if args.target:
        return run_on_target(
            args,
            inputs={
                "fp32": args.fp32,
                "int8": args.int8,
                "dataset": resolve_dataset(args.dataset, args.workspace),
                "preprocess": args.preprocess,
            },
            outputs={"html": args.html, "save_preprocess": args.save_preprocess},
            phase="comparison",
        )
    warn_isa(args.fp32, args.int8)
    with progress_bars(args.quiet) as on_progress:
        fp32 = _run(args.fp32, args, on_progress)
        int8 = _run(args.int8, args, on_progress)
        comparison = run_compare(
            args.fp32,
            args.int8,
            fp32,
            int8,
            resolve_dataset(args.dataset, args.workspace),
            preprocess=preprocess_options(args),
            samples=args.samples,
        )
    if args.html:
        from calibench.report.html import write_html

        write_html(comparison, args.html)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        console = wide_console()
        render_comparison(comparison, console)
        if args.html:
            console.print(f"HTML report written to {args.html}")
    return 0
