"""A project described for the pages and the API, from its rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.server.db import ProjectRow
from calibench.server.jobs.kinds import BaselineJob
from calibench.server.jobs.states import JobState
from calibench.server.web.datasets.schemas import DatasetView
from calibench.server.web.datasets.service import get_dataset
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.jobs.service import latest_job
from calibench.server.web.models.schemas import ModelView
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.figures import gain_of, layer_summary, recipe_of, speed_of
from calibench.server.web.projects.schemas import Accuracy, OptimizeOptions, ProjectView
from calibench.server.web.rows import get_row
from calibench.server.web.schemas import iso


def get_project(session: Session, project_id: int) -> ProjectRow:
    return get_row(session, ProjectRow, project_id, "project")


def optimize_options(session: Session, project: ProjectRow) -> OptimizeOptions:
    """Whether the project's model can be calibrated now, and if not, why."""
    model = get_model(session, project.model_id)
    job = latest_job(session, project.id)
    if not model.optimizable:
        return OptimizeOptions(
            enabled=False, reason=model.reason or "this model cannot be calibrated"
        )
    if job is None or job.kind != BaselineJob.KIND or job.state != JobState.DONE:
        state = "has not finished" if job is None or not JobState(job.state).finished else job.state
        return OptimizeOptions(
            enabled=False,
            reason=f"the baseline inference {state}; INT8 calibration compares against it, so "
            "it must finish first",
        )
    return OptimizeOptions(enabled=True, reason=None)


def project_view(session: Session, project: ProjectRow) -> ProjectView:
    model = get_model(session, project.model_id)
    dataset = get_dataset(session, project.dataset_id)
    job = latest_job(session, project.id)
    inference = project.inference or {}
    accuracy = inference.get("accuracy") or None
    children = session.scalars(
        select(ProjectRow.id).where(ProjectRow.parent_id == project.id)
    ).all()
    gain = None
    if project.parent_id is not None and project.comparison:
        parent = session.get(ProjectRow, project.parent_id)
        parent_model = get_model(session, parent.model_id) if parent else None
        if parent_model is not None:
            gain = gain_of(project.comparison, project.parent_id, parent_model.name, model.name)
    speed = gain.int8 if gain else speed_of(inference.get("performance"), own=model.name)
    report = (project.calibration or {}).get("report") or {}
    aa = report.get("accuracy_aware") or {}
    return ProjectView(
        id=project.id,
        name=f"{model.name} × {dataset.name} × {project.target}",
        model=ModelView.of(model),
        dataset=DatasetView.of(dataset),
        target=project.target,
        precision=model.precision,
        parent_id=project.parent_id,
        children=list(children),
        settings=project.settings,
        status=job.state if job else "new",
        job=JobView.of(job) if job else None,
        accuracy=None
        if not accuracy
        else Accuracy(metric=accuracy["metric"], figures=accuracy["figures"]),
        throughput=speed.throughput if speed else None,
        latency_ms=speed.latency_ms if speed else None,
        speed=speed,
        gain=gain,
        recipe=recipe_of(project.calibration),
        layers=layer_summary(report.get("layers"), list(aa["reverted"]) if aa else None),
        inference=project.inference,
        calibration=project.calibration,
        has_comparison=project.comparison is not None,
        optimize=optimize_options(session, project),
        created_at=iso(project.created_at),
    )
