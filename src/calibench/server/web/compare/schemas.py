"""The compare page as data: two projects of one model, their figures row by row, and whether
their speed was timed together."""

from __future__ import annotations

from typing import Any

from calibench.server.web.projects.schemas import ProjectView
from calibench.server.web.schemas import View


class PairRow(View):
    """One figure of both projects and the change from ``a`` to ``b``, in words."""

    key: str
    label: str
    a: str
    b: str
    change: str
    note: str | None = None
    """How the figures were measured, where the row needs saying."""


class Pair(View):
    """``b`` against ``a``: ``a`` is the reference (the FP32 parent, when one is the other's)."""

    a: ProjectView
    b: ProjectView
    title: str
    together: bool
    """Whether b's speed was timed side by side with a's (b is a's INT8 project, compared):
    only then is a speed-up shown between them."""
    speed_note: str
    """How the speed figures of the page were measured, in one sentence."""
    rows: list[PairRow]
    comparison: dict[str, Any] | None
    """b's stored comparison with a (per-layer time and error: the report) when ``together``."""
    choices: list[ProjectView]
    """Every project of the model: what the page's pickers offer."""
