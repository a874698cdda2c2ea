"""Jobs: their page, the fragments that refresh while they run, and cancel/retry from a form or
the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.pages import page, safe_next, see

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)
NextField = Annotated[str | None, Form()]


@api.get("/jobs")
def list_jobs(workbench: WorkbenchDep, state: str | None = None) -> list[JobView]:
    return workbench.jobs(state)


@api.get("/jobs/{job_id}")
def get_job(workbench: WorkbenchDep, job_id: int) -> JobView:
    return workbench.job_view(job_id)


@api.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
def job_log(workbench: WorkbenchDep, job_id: int) -> str:
    return workbench.job_log(job_id)


@api.post("/jobs/{job_id}/cancel")
def cancel_job(workbench: WorkbenchDep, job_id: int) -> JobView:
    return workbench.cancel(job_id)


@api.post("/jobs/{job_id}/retry")
def retry_job(workbench: WorkbenchDep, job_id: int) -> JobView:
    """Run a failed or cancelled job again. A job whose failure comes from its own inputs
    (``permanent``: its model, dataset or settings) fails the same way again; the pages offer
    Retry only where ``retryable`` is true."""
    return workbench.retry(job_id)


@pages.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, workbench: WorkbenchDep, job_id: int) -> HTMLResponse:
    found = workbench.job_page(job_id)
    context = {
        "job": found.job,
        "log": found.log,
        "project_name": found.project_name,
        "dataset_name": found.dataset_name,
    }
    return page(request, "job.html", context)


@pages.get("/fragments/jobs/{job_id}/log", response_class=HTMLResponse)
def job_log_fragment(request: Request, workbench: WorkbenchDep, job_id: int) -> HTMLResponse:
    found = workbench.job_page(job_id)
    return page(request, "_job_log.html", {"job": found.job, "log": found.log})


@pages.get("/fragments/jobs/{job_id}/stages", response_class=HTMLResponse)
def job_stages_fragment(request: Request, workbench: WorkbenchDep, job_id: int) -> HTMLResponse:
    return page(request, "_job_stages.html", {"job": workbench.job_view(job_id)})


@pages.post("/jobs/{job_id}/cancel", response_model=None)
def cancel_job_form(
    _: CsrfDep, workbench: WorkbenchDep, job_id: int, next: NextField = None
) -> Response:
    workbench.cancel(job_id)
    return see(safe_next(next, f"/jobs/{job_id}"))


@pages.post("/jobs/{job_id}/retry", response_model=None)
def retry_job_form(
    _: CsrfDep, workbench: WorkbenchDep, job_id: int, next: NextField = None
) -> Response:
    workbench.retry(job_id)
    return see(safe_next(next, f"/jobs/{job_id}"))
