"""Progress as the library reports it: a callback gets ``(stage, done, total)``.

A stage may carry a detail for the person watching (the current drop of an AccuracyAware
search): ``"accuracy-aware|drop 0.41"``. This module is the one place that writes and reads
that form, so the CLI's bars and the workbench's job stages agree on it.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]
"""(stage, done, total)"""

SEPARATOR = "|"


def with_detail(stage: str, detail: str) -> str:
    """``stage`` as a callback receives it when there is ``detail`` to show beside it."""
    return f"{stage}{SEPARATOR}{detail}" if detail else stage


def split_detail(text: str) -> tuple[str, str]:
    """The stage and its detail ("" when there is none) from what a callback received."""
    stage, _, detail = text.partition(SEPARATOR)
    return stage, detail
