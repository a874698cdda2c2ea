"""Compare: the page that sets any two projects of one model side by side, its JSON, and the
Compare link of a project's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from calibench.server.web.compare.schemas import Pair
from calibench.server.web.deps import WorkbenchDep
from calibench.server.web.pages import page, see

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)


@api.get("/compare")
def compare_pair(workbench: WorkbenchDep, a: int, b: int) -> Pair:
    """Project ``b`` against project ``a`` (two projects of one model); a speed-up only where
    the two were timed side by side."""
    return workbench.compare_pair(a, b)


@pages.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, workbench: WorkbenchDep, a: int, b: int) -> HTMLResponse:
    found = workbench.compare_pair(a, b)
    return page(request, "compare.html", {"pair": found, "c": found.comparison})


@pages.get("/projects/{project_id}/compare", response_model=None)
def project_compare(workbench: WorkbenchDep, project_id: int) -> Response:
    """An INT8 project against its parent; an FP32 project against its latest INT8 one."""
    a, b = workbench.compare_default(project_id)
    return see(f"/compare?a={a}&b={b}")
