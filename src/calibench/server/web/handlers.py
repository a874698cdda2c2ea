"""How every failure is answered: a :class:`WorkbenchError` with its own status, any other
:class:`CalibenchError` as 400, a full disk as 507, a request that fails validation as 422, and
anything unexpected as a 500 that names no detail (the server's log has it)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from calibench.errors import CalibenchError, WorkbenchError
from calibench.server.settings import ServerSettings
from calibench.server.web.disk import disk_full, disk_full_refusal
from calibench.server.web.templating import refuse, wants_json

log = logging.getLogger("calibench.server")


def install_error_handlers(app: FastAPI, settings: ServerSettings) -> None:
    def disk_full_answer(request: Request) -> Response:
        refusal = disk_full_refusal(settings.workspace)
        return refuse(request, refusal.status, refusal.message)

    @app.exception_handler(CalibenchError)
    async def calibench_error(request: Request, error: CalibenchError) -> Response:
        if disk_full(error):
            return disk_full_answer(request)
        if isinstance(error, WorkbenchError):
            return refuse(request, error.status, error.message)
        return refuse(request, 400, str(error))

    async def maybe_disk_full(request: Request, error: Exception) -> Response:
        if disk_full(error):
            return disk_full_answer(request)
        return _internal_error(request, error)

    app.add_exception_handler(OSError, maybe_disk_full)
    app.add_exception_handler(DBAPIError, maybe_disk_full)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and error.detail == "Not Found":
            return refuse(request, 404, f"there is no page {request.url.path[:100]}")
        return refuse(request, error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        return _internal_error(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        if wants_json(request):
            return JSONResponse(
                {"detail": "; ".join(problems), "errors": _plain(error.errors())},
                status_code=422,
            )
        return refuse(request, 422, "; ".join(problems))


def _internal_error(request: Request, error: BaseException) -> Response:
    log.error("unexpected error on %s", request.url.path, exc_info=error)
    return refuse(
        request,
        500,
        f"internal error ({type(error).__name__}); the server's output has the details",
    )


def _plain(errors: Any) -> Any:
    """Validation errors as JSON (pydantic may put exceptions in ``ctx``)."""
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
