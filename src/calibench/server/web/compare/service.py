"""Compare any two projects of one model: an INT8 project with its FP32 parent (its speed timed
side by side in its calibration job), two INT8 projects of one parent, or any other two.

Accuracy of two projects on one dataset is compared directly (it does not depend on the
machine's load). Speed is divided into a speed-up only where both figures were timed together;
otherwise each figure is shown with how and when it was measured, and the page says that they
were not timed together."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.report.comparison import drop_words
from calibench.server.db import ModelRow, ProjectRow
from calibench.server.jobs.states import JobState
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.compare.schemas import Pair, PairRow, SideBySide
from calibench.server.web.compare.timing import (
    pair_job,
    queue_timing,
    stored_timing,
    timing_refusal,
)
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.figures import Speed
from calibench.server.web.projects.schemas import ProjectView
from calibench.server.web.projects.views import get_project, project_view

NOT_TOGETHER = "not timed together"


class CompareService(WorkbenchBase):
    def compare_pair(self, a_id: int, b_id: int) -> Pair:
        """Project ``b_id`` against project ``a_id`` (swapped when ``b_id`` is ``a_id``'s parent,
        so the FP32 side is always the reference)."""
        with self.sessions() as session:
            a_row, b_row, family = _pair(session, a_id, b_id)
            members = select(ModelRow.id).where(
                or_(ModelRow.id == family, ModelRow.parent_id == family)
            )
            rows = session.scalars(
                select(ProjectRow).where(ProjectRow.model_id.in_(members)).order_by(ProjectRow.id)
            ).all()
            choices = [project_view(session, p) for p in rows]
            a, b = project_view(session, a_row), project_view(session, b_row)
            by_calibration = b.parent_id == a.id and b.gain is not None
            timing = (
                None
                if by_calibration
                else stored_timing(session, a_row, b_row, (a.model.name, b.model.name))
            )
            job = pair_job(session, a.id, b.id)
            shown_job = (
                job
                if job is not None
                and job.state != JobState.DONE
                and (timing is None or job.id > timing.job_id)
                else None
            )
            return Pair(
                a=a,
                b=b,
                title=f"{b.model.name} against {a.model.name}",
                together=by_calibration or timing is not None,
                timing=timing,
                timing_job=JobView.of(shown_job) if shown_job else None,
                timing_refusal=timing_refusal(session, a_row, b_row, by_calibration),
                speed_note=_speed_note(a, b, by_calibration, timing),
                rows=pair_rows(a, b, by_calibration, timing),
                comparison=b_row.comparison if by_calibration else None,
                choices=choices,
            )

    def time_pair(
        self, a_id: int, b_id: int, batch: int | None = None, streams: int | None = None
    ) -> JobView:
        """Queue the side-by-side timing of two projects of one model (the reference ordered
        as on Compare); the pair's timing already queued or running is the one answered."""
        with self.sessions.begin() as session:
            a_row, b_row, _ = _pair(session, a_id, b_id)
            by_calibration = (
                b_row.parent_id == a_row.id and project_view(session, b_row).gain is not None
            )
            job = queue_timing(
                session, a_row, b_row, by_calibration, self.perf_seconds, batch, streams
            )
            return JobView.of(job)

    def compare_default(self, project_id: int) -> tuple[int, int]:
        """The pair a project's Compare link opens: an INT8 project with its parent, an FP32
        project with its latest INT8 project."""
        with self.sessions() as session:
            project = get_project(session, project_id)
            if project.parent_id is not None:
                return project.parent_id, project.id
            child = session.scalars(
                select(ProjectRow.id)
                .where(ProjectRow.parent_id == project.id)
                .order_by(ProjectRow.id.desc())
            ).first()
            if child is None:
                raise WorkbenchError(
                    f"project {project_id} has no INT8 project yet: optimize it first, then "
                    "compare the two",
                    404,
                )
            return project.id, child


def _pair(session: Session, a_id: int, b_id: int) -> tuple[ProjectRow, ProjectRow, int]:
    """Both projects, the parent first when one is the other's, and their original model."""
    if a_id == b_id:
        raise WorkbenchError(f"choose two different projects to compare (both are {a_id})")
    a_row, b_row = get_project(session, a_id), get_project(session, b_id)
    if a_row.parent_id == b_row.id:
        a_row, b_row = b_row, a_row
    family = _root_model(session, a_row)
    if family != _root_model(session, b_row):
        raise WorkbenchError(
            f"projects {a_row.id} and {b_row.id} hold different models: Compare takes "
            "two projects of one model (its FP32 project and its INT8 ones)"
        )
    return a_row, b_row, family


def _root_model(session: Session, project: ProjectRow) -> int:
    model = get_model(session, project.model_id)
    return model.parent_id or model.id


def _speed_note(a: ProjectView, b: ProjectView, together: bool, timing: SideBySide | None) -> str:
    if timing is not None:
        return (
            f"Speed: both models timed side by side in alternating windows by job "
            f"{timing.job_id} ({timing.b.note.rsplit(' · ', 1)[0]}); accuracy from each "
            "project's own inference."
        )
    if together and b.gain is not None:
        return (
            "Speed: both models timed side by side in alternating windows, in one run of the "
            f"INT8 project's job ({b.gain.int8.note.rsplit(' · ', 1)[0]}); accuracy from each "
            f"project's inference on {b.dataset.name}."
        )
    return (
        "Speed: these two projects were not timed together, so no speed-up between them is "
        "shown; each figure says how and when it was measured, and an INT8 project's speed-up "
        "is against its own FP32 parent, timed side by side."
    )


def _speed_cell(speed: Speed | None, field: str, digits: str) -> str:
    value = getattr(speed, field, None)
    return "—" if value is None else format(value, digits)


def pair_rows(
    a: ProjectView, b: ProjectView, together: bool, timing: SideBySide | None = None
) -> list[PairRow]:
    """The figures of both projects, row by row, each change in the one format; the speed
    from the one run that timed both (``b``'s calibration, or ``timing``), if any."""
    rows = [
        PairRow(
            key="calibration",
            label="calibration",
            a=a.recipe.words if a.recipe else "original FP32 model",
            b=b.recipe.words if b.recipe else "original FP32 model",
            change="",
        )
    ]
    metric = next(iter(a.accuracy.figures), None) if a.accuracy else None
    if metric and a.accuracy and b.accuracy and metric in b.accuracy.figures:
        fa, fb = float(a.accuracy.figures[metric]), float(b.accuracy.figures[metric])
        same = a.dataset.id == b.dataset.id
        rows.append(
            PairRow(
                key="accuracy",
                label=f"accuracy ({metric})",
                a=f"{fa:.2f}",
                b=f"{fb:.2f}",
                change=drop_words(fa - fb)
                if same
                else f"measured on {a.dataset.name} and {b.dataset.name}: not comparable",
                note=f"on {a.dataset.name}" if same else None,
            )
        )
    gain = b.gain if together else None
    for field, key, label, digits in (
        ("throughput", "throughput", "throughput, samples/s", ".1f"),
        ("latency_ms", "latency", "latency, median ms", ".2f"),
    ):
        first: Speed | None
        second: Speed | None
        if gain is not None:  # both from the one run that timed them together
            first, second, note = gain.fp32, gain.int8, gain.int8.note
            change = gain.words if key == "throughput" else gain.latency_words
        elif timing is not None:  # both from the side-by-side timing job
            first, second, note = timing.a, timing.b, timing.b.note
            change = timing.words if key == "throughput" else timing.latency_words
        else:
            first, second, change = a.speed, b.speed, NOT_TOGETHER
            sides = (("reference", a), ("compared", b))
            note = "; ".join(f"{s}: {p.speed.note}" for s, p in sides if p.speed is not None)
        rows.append(
            PairRow(
                key=key,
                label=label,
                a=_speed_cell(first, field, digits),
                b=_speed_cell(second, field, digits),
                change=change,
                note=note or None,
            )
        )
    if gain is None and (a.gain is not None or b.gain is not None):
        rows.append(
            PairRow(
                key="gain",
                label="speed against its FP32 parent",
                a=a.gain.words if a.gain else "—",
                b=b.gain.words if b.gain else "—",
                change="each timed side by side with its parent, in its own run",
            )
        )
    size_a, size_b = a.model.size_bytes, b.model.size_bytes
    rows.append(
        PairRow(
            key="size",
            label="size, MB",
            a=f"{size_a / 1e6:.2f}",
            b=f"{size_b / 1e6:.2f}",
            change=f"{size_b / size_a:.0%} of the size" if size_a and size_b else "",
        )
    )
    rows.append(
        PairRow(
            key="layers",
            label="layers",
            a=a.layers.words if a.layers else "all in FP32 (original model)",
            b=b.layers.words if b.layers else "all in FP32 (original model)",
            change="",
        )
    )
    return rows
