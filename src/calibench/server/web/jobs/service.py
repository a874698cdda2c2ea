"""Jobs: what a person may do with one (read its log, cancel it, retry it). Jobs are queued by
:func:`calibench.server.jobs.lifecycle.queue_job`, from a typed description."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.jobs.kinds import ImportJob
from calibench.server.jobs.lifecycle import request_cancel, requeue
from calibench.server.jobs.states import ENDED_WITHOUT_RESULT, JobState
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.jobs.schemas import JobPage, JobView
from calibench.server.web.rows import get_row


def get_job(session: Session, job_id: int) -> JobRow:
    return get_row(session, JobRow, job_id, "job")


def latest_job(session: Session, project_id: int) -> JobRow | None:
    return session.scalars(
        select(JobRow).where(JobRow.project_id == project_id).order_by(JobRow.id.desc()).limit(1)
    ).first()


class JobService(WorkbenchBase):
    def jobs(self, state: str | None = None, project_id: int | None = None) -> list[JobView]:
        """Jobs oldest first (a project's: newest first), in ``state`` if given."""
        with self.sessions() as session:
            query = select(JobRow)
            if project_id is not None:
                query = query.where(JobRow.project_id == project_id).order_by(JobRow.id.desc())
            else:
                query = query.order_by(JobRow.id)
            if state:
                query = query.where(JobRow.state == state)
            return [JobView.of(j) for j in session.scalars(query)]

    def job_view(self, job_id: int) -> JobView:
        with self.sessions() as session:
            return JobView.of(get_job(session, job_id))

    def job_page(self, job_id: int) -> JobPage:
        with self.sessions() as session:
            view = JobView.of(get_job(session, job_id))
            names = _crumb_names(session, view)
        return JobPage(job=view, log=self._log(job_id), **names)

    def job_log(self, job_id: int) -> str:
        with self.sessions() as session:
            get_job(session, job_id)
        return self._log(job_id)

    def _log(self, job_id: int) -> str:
        path = self.paths.log_path(job_id)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def cancel(self, job_id: int) -> JobView:
        with self.sessions.begin() as session:
            job = get_job(session, job_id)
            if JobState(job.state).finished:
                raise WorkbenchError(
                    f"job {job_id} has ended ({job.state}): nothing to cancel", 409
                )
            request_cancel(session, job, self.paths)
            return JobView.of(job)

    def retry(self, job_id: int) -> JobView:
        with self.sessions.begin() as session:
            job = get_job(session, job_id)
            if job.state not in ENDED_WITHOUT_RESULT:
                raise WorkbenchError(
                    f"job {job_id} is {job.state}: only a failed or cancelled job can be retried",
                    409,
                )
            if job.kind == ImportJob.KIND:
                raise WorkbenchError(
                    f"job {job_id} imported an upload that was removed when it "
                    f"{job.state}: delete its dataset and import the file again",
                    409,
                )
            requeue(session, job)
            return JobView.of(job)


def _crumb_names(session: Session, job: JobView) -> dict[str, str | None]:
    """What a job's breadcrumbs name: its project (model × dataset) or its dataset."""
    project_name = dataset_name = None
    if job.project_id is not None:
        project = session.get(ProjectRow, job.project_id)
        if project is not None:
            model = session.get(ModelRow, project.model_id)
            dataset = session.get(DatasetRow, project.dataset_id)
            if model is not None and dataset is not None:
                project_name = f"{model.name} × {dataset.name}"
    if job.dataset_id is not None:
        row = session.get(DatasetRow, job.dataset_id)
        dataset_name = row.name if row is not None else None
    return {"project_name": project_name, "dataset_name": dataset_name}
