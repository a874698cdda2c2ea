"""``--target NAME`` on calibrate, infer and compare: the same command, run on a target.

The command's parsed options are written back into an argument list (argparse's own actions say
how), with the local files it reads marked as inputs to upload and those it writes as outputs to
download; the rest is ``targets.job``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from calibench.cli.common import progress_bars
from calibench.targets.assets import Input, Output
from calibench.targets.registry import Registry
from calibench.workflow.cache import default_workspace

LOCAL_ONLY = {"target", "workspace", "quiet", "run", "command_parser", "debug", "command"}
"""Options that mean something here only: the remote command gets its own workspace."""


def add_target_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        metavar="NAME",
        help="run on this registered target (calibench target add); results come back here",
    )


def remote_argv(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    inputs: dict[str, Path | None],
    outputs: dict[str, Path | None],
) -> list[str | Input | Output]:
    """The command line that means ``args``, with input and output paths marked."""

    def mark(dest: str, value: object) -> str | Input | Output:
        if dest in inputs and inputs[dest] is not None:
            return Input(inputs[dest])  # type: ignore[arg-type]
        if dest in outputs and outputs[dest] is not None:
            return Output(outputs[dest])  # type: ignore[arg-type]
        return str(value)

    argv: list[str | Input | Output] = []
    positionals: list[str | Input | Output] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in LOCAL_ONLY:
            continue
        value = getattr(args, action.dest, None)
        if dest_value := inputs.get(action.dest) or outputs.get(action.dest):
            value = dest_value
        if not action.option_strings:
            positionals.append(mark(action.dest, value))
            continue
        if value is None or value is False or value == action.default or value == []:
            continue
        option = max(action.option_strings, key=len)
        if action.nargs == 0:
            argv.append(option)
        elif isinstance(value, list):
            for item in value:
                argv += [option, str(item)]
        else:
            argv += [option, mark(action.dest, value)]
    return [*positionals, *argv]


def run_on_target(
    args: argparse.Namespace,
    inputs: dict[str, Path | None],
    outputs: dict[str, Path | None],
    phase: str,
) -> int:
    # asyncssh and its cryptography load here, not with every command
    from calibench.targets.job import JobFailed, RemoteJob

    workspace = args.workspace or default_workspace()
    target = Registry(workspace).get(args.target)
    argv = [args.command, *remote_argv(args.command_parser, args, inputs, outputs)]
    job = RemoteJob(target, argv, phase, workspace / "wheelhouse")
    err = Console(stderr=True)
    if not args.quiet:
        err.print(
            f"{phase} on target {target.name} ({target.address})", highlight=False, soft_wrap=True
        )
    with progress_bars(args.quiet) as bars:
        job.start()
        try:
            while True:
                outcome = job.wait(0.1)
                for event in job.events():
                    if event.text is not None:
                        if not event.text.startswith("calibench: error:"):
                            err.print(event.text, markup=False, highlight=False)
                    elif bars is not None:
                        bars(event.stage, event.done, event.total)
                if outcome is not None:
                    break
        except KeyboardInterrupt:
            err.print(f"stopping the run on target {target.name}…")
            job.stop()
            raise
    if isinstance(outcome, JobFailed):
        raise outcome.error
    assert not isinstance(outcome, JobFailed)
    sys.stdout.write(outcome.stdout)
    if not args.quiet:
        times = ", ".join(f"{k} {v:.1f} s" for k, v in outcome.seconds.items() if k != "done")
        err.print(f"ran on target {target.name}: {times}", highlight=False, soft_wrap=True)
    return 0
