"""The server itself: its health for monitors, and the API's documentation page (served from
here, as the OpenAPI schema, never from a CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from calibench.server.web.deps import RunnerDep
from calibench.server.web.pages import page
from calibench.server.web.schemas import View

router = APIRouter(prefix="/api", tags=["api"])


class Health(View):
    status: str
    running_jobs: list[int]
    """The ids of the jobs running now."""


@router.get("/health")
def health(runner: RunnerDep) -> Health:
    return Health(status="ok", running_jobs=runner.running())


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    schema = request.app.openapi()
    endpoints = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "body": ", ".join(body),
                    "params": [p["name"] for p in op.get("parameters", [])],
                }
            )
    return page(
        request,
        "api_docs.html",
        {"endpoints": endpoints, "schemas": schema.get("components", {}).get("schemas", {})},
    )
