"""The templates, and the refusal every error ends in: an error page for a browser, JSON
``{"detail": ...}`` for the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from calibench.server.web.present import FILTERS

SERVER = Path(__file__).parent.parent
templates = Jinja2Templates(directory=str(SERVER / "templates"))
templates.env.filters.update(FILTERS)
STATIC = SERVER / "static"


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def refuse(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return templates.TemplateResponse(
        request, "error.html", {"message": message, "status": status}, status_code=status
    )
