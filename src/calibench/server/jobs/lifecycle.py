"""A job's row from its queueing to its end: each step in the caller's database transaction.

The web side queues, cancels and retries; the runner and the workers end jobs and commit their
results. Committing is apart from running: a job's body may run on another machine, its result
is applied here, in the transaction that marks the job done."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from calibench.server.db import JobRow, now
from calibench.server.jobs.failures import failure_record
from calibench.server.jobs.kinds import JobDescription
from calibench.server.jobs.progress import StageBoard
from calibench.server.jobs.registry import kind_named
from calibench.server.jobs.states import JobState
from calibench.server.workspace import Workspace

CANCELLED = "cancelled by the user"
CANCELLED_BEFORE_START = "cancelled by the user before it started"


def queue_job(session: Session, project_id: int | None, description: JobDescription) -> JobRow:
    """A new queued job (flushed: it has its id); a runner takes it from the queue."""
    job = JobRow(
        project_id=project_id,
        kind=description.KIND,
        description=description.to_json(),
        state=JobState.QUEUED,
        stages=StageBoard(s.value for s in description.stages()).to_db(),
        cancel_requested=False,
        attempts=0,
    )
    session.add(job)
    session.flush()
    return job


def requeue(session: Session, job: JobRow) -> None:
    """A failed or cancelled job queued again, from its first stage; its kind undoes what its
    end marked (a calibration's model is pending again)."""
    job.state, job.message, job.cancel_requested = JobState.QUEUED, None, False
    job.result = None  # what the failure recorded
    job.stage, job.finished_at, job.started_at = None, None, None
    job.stages = StageBoard.from_db(job.stages).to_db()
    kind_named(job.kind).retry(session, job)


def end_job(
    session: Session,
    job: JobRow,
    state: JobState,
    message: str,
    workspace: Workspace,
    permanent: bool = False,
) -> None:
    """A job ends without a result: record why (and whether a retry would fail the same way,
    :mod:`~calibench.server.jobs.failures`), and let its kind undo what it prepared."""
    job.state, job.message, job.finished_at = state, message, now()
    job.result = failure_record(permanent)
    kind_named(job.kind).abandon(session, job, workspace)


def commit_job(
    session: Session,
    job: JobRow,
    result: dict[str, Any],
    workspace: Workspace,
    board: StageBoard,
) -> bool:
    """Apply a finished job's result (its files in the job's work folder) and mark it done;
    whether it was. A job no longer running is left as it is; a cancel asked while the work
    was ending wins."""
    if job.state != JobState.RUNNING:
        return False
    if job.cancel_requested:
        end_job(session, job, JobState.CANCELLED, CANCELLED, workspace)
        return False
    kind_named(job.kind).commit(session, job, result, workspace)
    # The figures now live with the project; the job keeps what it handed over.
    job.result = {"committed": sorted(result), "files": result.get("files", {})}
    job.state, job.finished_at = JobState.DONE, now()
    job.stages = board.completed()
    job.message = None
    return True


def request_cancel(session: Session, job: JobRow, workspace: Workspace) -> None:
    """Cancel a live job: a queued one ends at once, a running one when its runner stops it."""
    if job.state == JobState.QUEUED:
        end_job(session, job, JobState.CANCELLED, CANCELLED_BEFORE_START, workspace)
    else:
        job.cancel_requested = True
