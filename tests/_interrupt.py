"""Run the calibench CLI with each progress event printed to stdout, so a test can interrupt it
at a known point of the work instead of after a guessed delay."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import calibench.cli.calibrate as calibrate_cli


@contextmanager
def _announce(quiet: bool) -> Iterator[object]:
    def on_progress(stage: str, done: int, total: int) -> None:
        print(f"progress {stage} {done}/{total}", flush=True)

    yield on_progress


calibrate_cli.progress_bars = _announce  # type: ignore[assignment]

if __name__ == "__main__":
    from calibench.cli import main

    sys.exit(main(sys.argv[1:]))
