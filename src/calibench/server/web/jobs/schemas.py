"""A job as the pages and the API show it."""

from __future__ import annotations

from typing import Any

from calibench.server.db import JobRow
from calibench.server.jobs.failures import recorded_permanent
from calibench.server.jobs.kinds import ImportJob
from calibench.server.jobs.states import ENDED_WITHOUT_RESULT, JobState
from calibench.server.web.schemas import View, iso


class JobView(View):
    id: int
    project_id: int | None
    dataset_id: int | None
    """The dataset an ``import`` job imports (None for other kinds)."""
    kind: str
    state: str
    stage: str | None
    stages: list[dict[str, Any]]
    """Each stage's name, done and total as the job reports them, and its percent."""
    percent: int
    message: str | None
    cancel_requested: bool
    worker_pid: int | None
    attempts: int
    retryable: bool
    """Whether Retry is offered: a failed or cancelled job whose failure does not come from
    its own inputs (a retry of one that does would fail the same way)."""
    permanent: bool
    """The job failed because of its model, dataset or settings: a retry fails the same way."""
    created_at: str | None
    started_at: str | None
    finished_at: str | None

    @classmethod
    def of(cls, row: JobRow) -> JobView:
        stages = []
        for stage in row.stages or []:
            total = stage.get("total") or 0
            fraction = (stage.get("done", 0) / total) if total else 0.0
            stages.append({**stage, "percent": round(100 * min(1.0, fraction))})
        overall = (
            100
            if row.state == JobState.DONE
            else round(sum(s["percent"] for s in stages) / len(stages))
            if stages
            else 0
        )
        permanent = row.state == JobState.FAILED and recorded_permanent(row.result)
        return cls(
            id=row.id,
            project_id=row.project_id,
            dataset_id=(row.description or {}).get("inputs", {}).get("dataset_id")
            if row.kind == ImportJob.KIND
            else None,
            kind=row.kind,
            state=row.state,
            stage=row.stage,
            stages=stages,
            percent=overall,
            message=row.message,
            cancel_requested=row.cancel_requested,
            worker_pid=row.worker_pid,
            attempts=row.attempts,
            retryable=row.state in ENDED_WITHOUT_RESULT
            and row.kind != ImportJob.KIND
            and not permanent,
            permanent=permanent,
            created_at=iso(row.created_at),
            started_at=iso(row.started_at),
            finished_at=iso(row.finished_at),
        )


class JobPage(View):
    """A job's page: the job and its log so far, and the names its breadcrumbs show."""

    job: JobView
    log: str
    project_name: str | None = None
    """The project's model × dataset, for a project's job."""
    dataset_name: str | None = None
    """The dataset an import job imports."""
