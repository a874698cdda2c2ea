"""Compare: the page that sets any two projects of one model side by side, its JSON, and the
Compare link of a project's page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from calibench.server.web.compare.schemas import Pair, TimingRequest
from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.pages import page, see

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)


@api.get("/compare")
def compare_pair(workbench: WorkbenchDep, a: int, b: int) -> Pair:
    """Project ``b`` against project ``a`` (two projects of one model); a speed-up only where
    the two were timed side by side."""
    return workbench.compare_pair(a, b)


@api.post("/compare/timing", status_code=202)
def time_pair(workbench: WorkbenchDep, body: TimingRequest) -> JobView:
    """Time projects ``a`` and ``b`` side by side (a job): afterwards ``GET /api/compare``
    divides their speeds (``timing``). A timing of the pair already queued or running is
    answered instead of a second one."""
    return workbench.time_pair(body.a, body.b, body.batch, body.streams)


@pages.post("/compare/timing", response_model=None)
def time_pair_form(
    _: CsrfDep, workbench: WorkbenchDep, a: Annotated[int, Form()], b: Annotated[int, Form()]
) -> Response:
    workbench.time_pair(a, b)
    return see(f"/compare?a={a}&b={b}")


@pages.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, workbench: WorkbenchDep, a: int, b: int) -> HTMLResponse:
    found = workbench.compare_pair(a, b)
    return page(request, "compare.html", {"pair": found, "c": found.comparison})


@pages.get("/projects/{project_id}/compare", response_model=None)
def project_compare(workbench: WorkbenchDep, project_id: int) -> Response:
    """An INT8 project against its parent; an FP32 project against its latest INT8 one."""
    a, b = workbench.compare_default(project_id)
    return see(f"/compare?a={a}&b={b}")
