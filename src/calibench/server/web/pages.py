"""What every page route uses: rendering a template with the form token, redirecting after a
form, and refusing redirects to other sites."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from calibench import __version__
from calibench.server.web.security import csrf_token
from calibench.server.web.templating import templates


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    context = {"csrf": csrf_token(request), "version": __version__, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def see(url: str) -> RedirectResponse:
    """After a form: the browser GETs ``url`` (303), so a reload does not post again."""
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str) -> str:
    """Only this site's own paths: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default
