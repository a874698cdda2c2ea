"""Projects: create one (its baseline inference starts as a job), describe, compare, delete."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from calibench.data.preprocess import Preprocess
from calibench.errors import CalibenchError, WorkbenchError
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.jobs.kinds import LOCAL, BaselineJob
from calibench.server.jobs.lifecycle import queue_job
from calibench.server.jobs.states import LIVE, JobState
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.datasets.schemas import DatasetView
from calibench.server.web.datasets.service import ready_dataset
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.jobs.service import latest_job
from calibench.server.web.models.schemas import ModelView
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.checks import (
    METRICS,
    accuracy_aware_refusal,
    check_finite,
    check_metric,
    inference_settings,
    metric_fits,
)
from calibench.server.web.projects.compatible import refuse_incompatible
from calibench.server.web.projects.schemas import ProjectDetail, ProjectView
from calibench.server.web.projects.views import get_project, project_view
from calibench.server.web.rows import referrers, refuse_while_a_job_uses, refuse_while_used
from calibench.server.web.targets.service import target_choice, target_names


class ProjectService(WorkbenchBase):
    def create_project(
        self,
        model_id: int,
        dataset_id: int,
        batch: int = 1,
        streams: int = 1,
        preprocess: dict[str, Any] | None = None,
        metric: str | None = None,
        target: str | None = None,
        runtime: str | None = None,
    ) -> ProjectView:
        """A project on this machine or on a registered ``target``, its speed and accuracy
        measured on ``runtime`` (default ONNX Runtime)."""
        remote = target_choice(self.workspace, target)
        settings = inference_settings(batch, streams, runtime, local=remote is None)
        metric = check_metric(metric)
        check_finite(preprocess, "preprocess")
        if preprocess:
            try:
                Preprocess(**preprocess)
            except (TypeError, ValueError, CalibenchError) as error:
                raise WorkbenchError(f"invalid preprocessing: {error}") from error
        with self.sessions.begin() as session:
            model = get_model(session, model_id)
            dataset = ready_dataset(session, dataset_id)
            metric_fits(metric, dataset)
            if model.state != "ready":
                raise WorkbenchError(f"model {model.name!r} is not ready ({model.state})", 409)
            refuse_incompatible(self.workspace, model, dataset, settings["batch"], preprocess)
            project = ProjectRow(
                model_id=model.id,
                dataset_id=dataset.id,
                target=remote or LOCAL,
                settings={**settings, "preprocess": preprocess or None, "metric": metric or None},
            )
            session.add(project)
            session.flush()
            queue_job(
                session,
                project.id,
                BaselineJob(
                    model=model.path,
                    name=model.name,
                    dataset=dataset.path,
                    dataset_name=dataset.name,
                    **settings,
                    seconds=self.perf_seconds,
                    preprocess=preprocess or None,
                    metric=metric or None,
                    target=remote,
                ),
            )
            return project_view(session, project)

    def projects(self, model_id: int | None = None) -> list[ProjectView]:
        """Every project (or those of one model), each original followed by its INT8 ones."""
        with self.sessions() as session:
            query = select(ProjectRow)
            if model_id is not None:
                query = query.where(ProjectRow.model_id == model_id).order_by(ProjectRow.id)
            else:
                family = func.coalesce(ProjectRow.parent_id, ProjectRow.id)
                query = query.order_by(family, ProjectRow.id)
            return [project_view(session, p) for p in session.scalars(query).all()]

    def project_view(self, project_id: int) -> ProjectView:
        with self.sessions() as session:
            return project_view(session, get_project(session, project_id))

    def project_detail(self, project_id: int) -> ProjectDetail:
        with self.sessions() as session:
            view = project_view(session, get_project(session, project_id))
            jobs = session.scalars(
                select(JobRow).where(JobRow.project_id == project_id).order_by(JobRow.id.desc())
            )
            parent_id = view.parent_id
            return ProjectDetail(
                project=view,
                jobs=[JobView.of(j) for j in jobs],
                parent=project_view(session, get_project(session, parent_id))
                if parent_id
                else None,
                children=[project_view(session, get_project(session, c)) for c in view.children],
            )

    def accuracy_aware_refusal(self, project_id: int) -> str | None:
        """Why AccuracyAware is not offered for this project (None: it is)."""
        with self.sessions() as session:
            project = get_project(session, project_id)
            own = session.get(DatasetRow, project.dataset_id)
            return accuracy_aware_refusal(own) if own else "no dataset"

    def choices(self) -> dict[str, Any]:
        """What the project forms offer: the metrics, the ready models, the datasets, the
        targets."""
        with self.sessions() as session:
            models = session.scalars(
                select(ModelRow).where(ModelRow.state == "ready").order_by(ModelRow.id)
            )
            datasets = session.scalars(select(DatasetRow).order_by(DatasetRow.id))
            return {
                "metrics": METRICS,
                "models": [ModelView.of(m) for m in models],
                "datasets": [DatasetView.of(d) for d in datasets],
                "targets": [LOCAL, *target_names(self.workspace)],
            }

    def delete_project(self, project_id: int) -> None:
        """Delete a project, its jobs and their logs; an INT8 project takes its model along."""
        with self.sessions.begin() as session:
            project = get_project(session, project_id)
            refuse_while_used(
                referrers(session, ProjectRow.parent_id, project_id),
                f"project {project_id} was calibrated into",
                "INT8 project",
            )
            jobs = session.scalars(select(JobRow).where(JobRow.project_id == project_id)).all()
            busy = [j.id for j in jobs if not JobState(j.state).finished]
            if busy:
                raise WorkbenchError(
                    f"project {project_id}'s job {busy[0]} has not ended: cancel it first", 409
                )
            model = get_model(session, project.model_id)
            for job in jobs:
                session.delete(job)
            session.flush()
            session.delete(project)
            session.flush()
            others = session.scalar(select(func.count()).where(ProjectRow.model_id == model.id))
            drop_model = model.parent_id is not None and not others
            if drop_model:
                # Another project's job may read it (Compare's side-by-side timing).
                refuse_while_a_job_uses(session, model.path, f"project {project_id}'s model")
                session.delete(model)
            job_ids = [j.id for j in jobs]
        for job_id in job_ids:
            shutil.rmtree(self.paths.job_dir(job_id), ignore_errors=True)
        shutil.rmtree(self.paths.project_dir(project_id), ignore_errors=True)
        if drop_model:
            shutil.rmtree(self.paths.model_dir(model.id), ignore_errors=True)

    def comparison(self, project_id: int) -> tuple[dict[str, Any], Path]:
        """The INT8 project's comparison with its FP32 parent, and its HTML report's file."""
        with self.sessions() as session:
            project = get_project(session, project_id)
            if project.parent_id is None:
                raise WorkbenchError(
                    f"project {project_id} holds an original model: compare one of its INT8 "
                    "projects with it",
                    404,
                )
            if project.comparison is None:
                job = latest_job(session, project.id)
                state = job.state if job else "new"
                why = (
                    "its calibration job has not finished"
                    if state in LIVE
                    else f"its calibration job {state}; retry it from the project's page"
                )
                raise WorkbenchError(f"project {project_id} has no comparison: {why}", 409)
            return project.comparison, self.paths.report_file(project.id)
