"""The compare page as data: two projects of one model, their figures row by row, and whether
their speed was timed together."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.projects.figures import Speed
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


class SideBySide(View):
    """``b`` against ``a``, both timed in one side-by-side timing job (Compare's button)."""

    job_id: int
    a: Speed
    b: Speed
    throughput: float | None
    """b's samples/s over a's (> 1: b is faster)."""
    latency: float | None
    """a's median latency over b's (> 1: b is faster)."""
    words: str
    """``1.07× faster``, the format every page uses."""
    latency_words: str
    how: str
    """``timed side by side, batch 1 × 1 stream, …, ONNX Runtime 1.22.1 · AMD EPYC …, 30 Nov
    2026, 14:40 UTC``."""
    sentence: str
    """``B is 1.07× faster than A (timed side by side, …)``."""


class Pair(View):
    """``b`` against ``a``: ``a`` is the reference (the FP32 parent, when one is the other's)."""

    a: ProjectView
    b: ProjectView
    title: str
    together: bool
    """Whether b's speed was timed side by side with a's (by b's calibration job, when b is
    a's INT8 project, or by a side-by-side timing job): only then is a speed-up shown."""
    timing: SideBySide | None
    """The latest side-by-side timing job's figures, for a pair not timed by a calibration."""
    timing_job: JobView | None
    """The pair's latest side-by-side timing job, while it runs or when it ended without a
    result (None once its figures are stored)."""
    timing_refusal: str | None
    """Why the pair cannot be timed side by side (None: the button is offered)."""
    speed_note: str
    """How the speed figures of the page were measured, in one sentence."""
    rows: list[PairRow]
    comparison: dict[str, Any] | None
    """b's stored comparison with a (per-layer time and error: the report) when ``together``."""
    choices: list[ProjectView]
    """Every project of the model: what the page's pickers offer."""


class TimingRequest(BaseModel):
    """Time two projects of one model side by side (``POST /api/compare/timing``)."""

    a: int = Field(description="the reference project")
    b: int = Field(description="the compared project")
    batch: int | None = Field(None, ge=1, le=1024, description="default: the reference's")
    streams: int | None = Field(None, ge=1, le=64, description="default: the reference's")
