"""The side-by-side timing job: two projects' models (of one original model) timed in
alternating windows at the same inference settings, on one sample of the reference project's
dataset; its commit stores the figures for the pair (``pair_timings``), where Compare reads
them. It writes no file: its result is the figures alone, so it runs on a target as it runs
here."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from calibench.errors import CalibenchError
from calibench.runtime.backend import Runtime
from calibench.server.db import JobRow, PairTimingRow, ProjectRow
from calibench.server.jobs.context import JobContext, measuring, named
from calibench.server.jobs.kinds import SideBySideJob
from calibench.server.jobs.states import Stage
from calibench.server.workspace import Workspace
from calibench.workflow.performance import PerfSettings

TICK = 0.5
"""Seconds between two progress reports while the models are timed."""


def run_side_by_side(ctx: JobContext, job: SideBySideJob) -> dict[str, Any]:
    from calibench.workflow.side_by_side import A, B, prepare_pair, time_side_by_side

    ws = ctx.workspace
    a, b, dataset = ws.path(job.model_a), ws.path(job.model_b), ws.path(job.dataset)
    names: dict[Path, str | None] = {a: job.name_a, b: job.name_b, dataset: job.dataset_name}
    ctx.progress(Stage.CHECKING_MODELS, 0, 1)
    with named(ws, names):
        feeds = prepare_pair(
            a, b, dataset, job.preprocess or None, names=(repr(job.name_a), repr(job.name_b))
        )
    ctx.progress(Stage.CHECKING_MODELS, 1, 1)
    settings = PerfSettings(
        batch=int(job.batch),
        streams=int(job.streams),
        seconds=job.seconds,
        runtime=Runtime.parse(job.runtime),
    )
    ctx.log.info(
        "timing %r and %r side by side: batch %d x %d stream(s), %.1f s each",
        job.name_a,
        job.name_b,
        settings.batch,
        settings.streams,
        settings.seconds,
    )
    with named(ws, names), measuring(ctx), ticking(ctx, Stage.TIMING, 2 * settings.seconds):
        timed = time_side_by_side(a, b, feeds, settings)
    for key, name in ((A, job.name_a), (B, job.name_b)):
        ctx.log.info(
            "%s: %.1f samples/s, median latency %.2f ms",
            name,
            timed[key].throughput,
            timed[key].latency_ms_median,
        )
    return {key: result.to_dict() for key, result in timed.items()}


@contextmanager
def ticking(ctx: JobContext, stage: Stage, seconds: float) -> Iterator[None]:
    """The stage's bar moves with the time spent in it, in whole seconds of about ``seconds``
    (a timing lasts as long as it was asked to; loading the sessions adds a little)."""
    total = max(1, math.ceil(seconds))
    stop = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not stop.wait(TICK):
            ctx.progress(stage, min(total - 1, int(time.monotonic() - start)), total)

    ctx.progress(stage, 0, total)
    ticker = threading.Thread(target=tick, daemon=True, name="progress")
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
    ctx.progress(stage, total, total)


def commit_side_by_side(
    session: Session, job: JobRow, result: dict[str, Any], ws: Workspace
) -> None:
    """Store the figures for the pair; refused in words when a project went meanwhile."""
    inputs = (job.description or {}).get("inputs") or {}
    pair = (int(inputs["project_a"]), int(inputs["project_b"]))
    for project_id in pair:
        if session.get(ProjectRow, project_id) is None:
            raise CalibenchError(
                f"project {project_id} was deleted while the two models were timed: the "
                "timing was not kept"
            )
    if not isinstance(result.get("a"), dict) or not isinstance(result.get("b"), dict):
        raise CalibenchError("the timing came back without both models' figures")
    session.add(
        PairTimingRow(
            a_id=pair[0], b_id=pair[1], job_id=job.id, figures={k: result[k] for k in "ab"}
        )
    )


def abandon_side_by_side(session: Session, job: JobRow, ws: Workspace) -> None:
    """A timing that ended without a result leaves nothing behind: Compare offers it again."""
    return None
