"""Timing any two projects of one model side by side: the job Compare queues for a pair whose
speeds were not timed together, and the figures it stored, read for either order of the pair.

The pair is timed at the reference project's inference settings (or those asked for), on one
sample of the reference project's dataset, on the machine both projects run their jobs on: two
projects on different targets cannot be timed together, and are refused in words."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.report.comparison import speed_words
from calibench.server.db import JobRow, PairTimingRow, ProjectRow
from calibench.server.jobs.kinds import LOCAL, SideBySideJob
from calibench.server.jobs.lifecycle import queue_job
from calibench.server.jobs.states import LIVE
from calibench.server.web.compare.schemas import SideBySide
from calibench.server.web.datasets.service import get_dataset
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.checks import inference_settings
from calibench.server.web.projects.figures import speed_of

RECENT_JOBS = 200
"""Timing jobs looked through for a pair's latest (newest first)."""


def stored_timing(
    session: Session, a: ProjectRow, b: ProjectRow, names: tuple[str, str]
) -> SideBySide | None:
    """The latest side-by-side timing of ``a`` and ``b`` (queued either way round), ``b``
    against ``a``; ``names`` are their models' names."""
    row = session.scalars(
        select(PairTimingRow)
        .where(
            or_(
                (PairTimingRow.a_id == a.id) & (PairTimingRow.b_id == b.id),
                (PairTimingRow.a_id == b.id) & (PairTimingRow.b_id == a.id),
            )
        )
        .order_by(PairTimingRow.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    first, second = ("a", "b") if row.a_id == a.id else ("b", "a")
    keys = {first: names[0], second: names[1]}
    fa = speed_of(row.figures.get(first), keys, names[0])
    fb = speed_of(row.figures.get(second), keys, names[1])
    if fa is None or fb is None:
        return None
    throughput = fb.throughput / fa.throughput if fa.throughput else None
    latency = fa.latency_ms / fb.latency_ms if fb.latency_ms else None
    words = speed_words(throughput)
    how = ", ".join(p for p in ("timed side by side", fb.settings, fb.machine, fb.when) if p)
    if words == "same speed":
        sentence = f"{names[1]} and {names[0]} run at the same speed ({how})"
    else:
        sentence = f"{names[1]} is {words} than {names[0]} ({how})"
    return SideBySide(
        job_id=row.job_id,
        a=fa,
        b=fb,
        throughput=throughput,
        latency=latency,
        words=words,
        latency_words=speed_words(latency),
        how=how,
        sentence=sentence,
    )


def pair_job(session: Session, a_id: int, b_id: int) -> JobRow | None:
    """The latest side-by-side timing job of the pair, either way round."""
    jobs = session.scalars(
        select(JobRow)
        .where(JobRow.kind == SideBySideJob.KIND)
        .order_by(JobRow.id.desc())
        .limit(RECENT_JOBS)
    )
    for job in jobs:
        inputs = (job.description or {}).get("inputs") or {}
        if {inputs.get("project_a"), inputs.get("project_b")} == {a_id, b_id}:
            return job
    return None


def timing_refusal(session: Session, a: ProjectRow, b: ProjectRow, together: bool) -> str | None:
    """Why the pair cannot be timed side by side (None: it can)."""
    if together:
        return (
            f"project {b.id} was timed side by side with its parent, project {a.id}, by its "
            "calibration job: those are the figures shown"
        )
    if a.model_id == b.model_id:
        return (
            f"projects {a.id} and {b.id} hold the same model: there is no second model to time "
            "against it"
        )
    for project in (a, b):
        model = get_model(session, project.model_id)
        if model.state != "ready":
            then = (
                "its calibration job failed: retry it from the project's page"
                if model.state == "failed"
                else "its calibration job must finish first"
            )
            return f"project {project.id}'s model is not ready ({model.state}): {then}"
    runtime_a = a.settings.get("runtime", "onnxruntime")
    runtime_b = b.settings.get("runtime", "onnxruntime")
    if runtime_a != runtime_b:
        return (
            f"project {a.id} runs on {runtime_a} and project {b.id} on {runtime_b}: two models "
            "are timed side by side on one runtime, so both projects must name the same one"
        )
    if a.target != b.target:
        return (
            f"project {a.id} runs its jobs on {_where(a.target)} and project {b.id} on "
            f"{_where(b.target)}: two models are timed side by side on one machine, so both "
            "projects must name the same target"
        )
    return None


def queue_timing(
    session: Session,
    a: ProjectRow,
    b: ProjectRow,
    together: bool,
    seconds: float,
    batch: int | None = None,
    streams: int | None = None,
) -> JobRow:
    """Queue the pair's timing (at the reference's settings unless asked otherwise); a timing
    of the pair already queued or running is the one answered."""
    live = pair_job(session, a.id, b.id)
    if live is not None and live.state in LIVE:
        return live
    refusal = timing_refusal(session, a, b, together)
    if refusal is not None:
        raise WorkbenchError(refusal, 409)
    settings = inference_settings(
        a.settings.get("batch", 1) if batch is None else batch,
        a.settings.get("streams", 1) if streams is None else streams,
        a.settings.get("runtime"),
        local=a.target == LOCAL,
    )
    model_a, model_b = get_model(session, a.model_id), get_model(session, b.model_id)
    dataset = get_dataset(session, a.dataset_id)
    return queue_job(
        session,
        None,
        SideBySideJob(
            project_a=a.id,
            project_b=b.id,
            model_a=model_a.path,
            model_b=model_b.path,
            name_a=model_a.name,
            name_b=model_b.name,
            dataset=dataset.path,
            dataset_name=dataset.name,
            **settings,
            # As long as an INT8 project's calibration job times it beside its parent.
            seconds=2 * seconds,
            preprocess=a.settings.get("preprocess") or None,
            target=None if a.target == LOCAL else a.target,
        ),
    )


def _where(target: str) -> str:
    return target if target == LOCAL else f"target {target!r}"
