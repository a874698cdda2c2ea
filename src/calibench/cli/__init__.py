"""The ``calibench`` command line.

Errors are one line (``calibench: error: …``) with a non-zero exit code; ``--debug`` shows the
traceback. A usage error (argparse's usage line and message) exits 5, as a bad option. Progress
goes to stderr, results to stdout, so ``--json`` output can be piped.
Ctrl-C stops at once; results are only ever written whole, so nothing half-written remains.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from rich.console import Console

from calibench.cli import calibrate, datasets, sensitivity, serve, target, workflow
from calibench.errors import CalibenchError, ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse's own parser, except that a usage error exits 5 (a bad option, as every other
    refusal of an option), not 2, which calibench keeps for an unreadable model."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ConfigError.exit_code, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (5): argparse has said why
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
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
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing left to say to it.
        sys.stderr.close()
        return 0
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="calibench", description="INT8 calibration of FP32 ONNX models for ONNX Runtime."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    calibrate.register(sub)
    datasets.register(sub)
    workflow.register(sub)
    serve.register(sub)
    sensitivity.register(sub)
    target.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
