"""Jobs: the one function that queues a job, and what a person may do with one (read its log,
cancel it, retry it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.server.db import JobRow, ProjectRow
from calibench.server.jobs import end_job, log_path
from calibench.server.tasks import retry_calibration, stages_for
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.rows import get_row


def queue_job(
    session: Session, project: ProjectRow | None, kind: str, inputs: dict[str, Any]
) -> JobRow:
    """Queue a job of ``kind`` on ``inputs`` (for ``project``, if any): every job the workbench
    starts is made here."""
    description = {"inputs": inputs}
    job = JobRow(
        project_id=project.id if project is not None else None,
        kind=kind,
        description=description,
        state="queued",
        stages=[{"name": s, "done": 0, "total": 0} for s in stages_for(kind, description)],
        cancel_requested=False,
        attempts=0,
    )
    session.add(job)
    session.flush()
    return job


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

    def job_log(self, job_id: int) -> str:
        with self.sessions() as session:
            get_job(session, job_id)
        path = log_path(self.workspace, job_id)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def cancel(self, job_id: int) -> JobView:
        with self.sessions.begin() as session:
            job = get_job(session, job_id)
            if job.finished:
                raise WorkbenchError(
                    f"job {job_id} has ended ({job.state}): nothing to cancel", 409
                )
            if job.state == "queued":
                end_job(
                    session,
                    job,
                    "cancelled",
                    "cancelled by the user before it started",
                    self.workspace,
                )
            else:
                job.cancel_requested = True
            return JobView.of(job)

    def retry(self, job_id: int) -> JobView:
        with self.sessions.begin() as session:
            job = get_job(session, job_id)
            if job.state not in ("failed", "cancelled"):
                raise WorkbenchError(
                    f"job {job_id} is {job.state}: only a failed or cancelled job can be retried",
                    409,
                )
            if job.kind == "import":
                raise WorkbenchError(
                    f"job {job_id} imported an upload that was removed when it "
                    f"{job.state}: delete its dataset and import the file again",
                    409,
                )
            job.state, job.message, job.cancel_requested = "queued", None, False
            job.stage, job.finished_at, job.started_at = None, None, None
            job.stages = [{"name": s["name"], "done": 0, "total": 0} for s in job.stages]
            if job.kind == "calibration":
                retry_calibration(session, job)
            return JobView.of(job)
