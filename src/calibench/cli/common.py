"""What every command shares: preprocessing options, progress bars, wide tables."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
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

from calibench.data.preprocess import Preprocess, load_preprocess
from calibench.errors import ConfigError
from calibench.metrics.registry import SPEC_HELP, check_spec
from calibench.progress import ProgressCallback, split_detail
from calibench.targets.protocol import JSON_LINES, PROGRESS_ENV, progress_line


def add_preprocess_options(parser: argparse.ArgumentParser) -> None:
    pre = parser.add_argument_group("image preprocessing (image datasets only)")
    pre.add_argument(
        "--preprocess",
        type=Path,
        metavar="FILE",
        help="read the preprocessing from this JSON file (options below override it)",
    )
    pre.add_argument(
        "--save-preprocess",
        type=Path,
        metavar="FILE",
        help="write the preprocessing used to this JSON file, to reuse it",
    )
    pre.add_argument(
        "--resize", help="short side (256) or exact size (224x224); default: the model's input size"
    )
    pre.add_argument("--crop", help="centre crop (224 or 224x224) after the resize")
    pre.add_argument(
        "--scale", type=finite_float, help="multiply pixels by this first (default 1/255)"
    )
    pre.add_argument(
        "--mean", help="per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406"
    )
    pre.add_argument("--std", help="per-channel std divided by, e.g. 0.229,0.224,0.225")
    pre.add_argument("--bgr", action="store_true", help="feed channels in BGR order")
    pre.add_argument("--layout", choices=["NCHW", "NHWC"], help="default: guessed from the model")


def preprocess_options(args: argparse.Namespace) -> dict[str, object]:
    """The preprocessing the user asked for: the file's settings, then the options on top."""
    options: dict[str, object] = {}
    if args.preprocess:
        options.update(load_preprocess(args.preprocess).to_dict())
    if args.resize:
        options["resize"] = _size(args.resize)
    if args.crop:
        crop = _size(args.crop)
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
    Preprocess(**options)  # type: ignore[arg-type]  # refuses bad sizes and numbers now
    return options


def add_metric_option(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--metric``, checked by the parser against the registry's one list of names, so that a
    name the help offers is never refused later and a typo is refused before any work."""
    parser.add_argument("--metric", type=metric_spec, metavar="METRIC", help=prefix + SPEC_HELP)


def metric_spec(text: str) -> str:
    """An argparse type: a built-in metric (canonical name) or a custom ``module:function``."""
    try:
        return check_spec(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def finite_float(text: str) -> float:
    """An argparse type: a finite number (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def check_writable(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written: a folder, a path under a
    file, or a folder without write permission. Writes and removes nothing but a probe file."""
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path} cannot be written: {existing} is a file, not a folder")
    try:
        if existing == folder:
            handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
            os.close(handle)
            os.unlink(probe)
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise ConfigError(
            f"{option} {path} cannot be written: {exc.strerror or exc} in {existing}"
        ) from None


def check_distinct(paths: dict[str, Path | None]) -> None:
    """Refuse two outputs that are the same file (one would overwrite the other)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise ConfigError(f"{seen[key]} and {option} name the same file {path}; choose two")
        seen[key] = option


def wide_console() -> Console:
    """Layer tables need room: never narrower than 150 columns, even in a pipe."""
    return Console(width=max(Console().width, 150))


def _size(text: str) -> int | tuple[int, int]:
    try:
        if "x" in text:
            h, w = text.lower().split("x")
            return int(h), int(w)
        return int(text)
    except ValueError:
        raise ConfigError(f"not a size: {text!r} (write 256 or 224x224)") from None


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers, got {text!r}") from None


@contextmanager
def progress_bars(quiet: bool) -> Iterator[ProgressCallback | None]:
    """A bar per stage on stderr, fed by ``(stage, done, total)`` events; JSON lines instead
    when the command runs on a target for a host that draws the bars (``targets.protocol``)."""
    if os.environ.get(PROGRESS_ENV) == JSON_LINES:
        yield _json_lines()
        return
    if quiet:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        # One bar per stage, its detail (e.g. the current drop) shown beside it.
        key, detail = split_detail(stage)
        if key not in tasks:
            tasks[key] = bars.add_task(key, total=total)
        description = f"{key} {detail}" if detail else key
        bars.update(tasks[key], completed=done, total=total, description=description)

    with bars:
        yield on_progress


def _json_lines() -> ProgressCallback:
    """Progress as lines on stderr, at most ten a second per stage (and every stage's end)."""
    last: dict[str, float] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last.get(stage, 0.0) < 0.1:
            return
        last[stage] = now
        print(progress_line(stage, done, total), file=sys.stderr, flush=True)

    return on_progress
