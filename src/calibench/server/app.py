"""The FastAPI application: security checks, error pages, and the two sets of routes (pages and
JSON API) over one :class:`~calibench.server.service.Workbench`."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calibench import __version__
from calibench.errors import CalibenchError, ConfigError
from calibench.server.db import make_engine, session_factory
from calibench.server.jobs.runner import JobRunner
from calibench.server.migrate import upgrade
from calibench.server.service import Workbench, WorkbenchError, disk_full, disk_full_refusal
from calibench.server.settings import ServerSettings, is_loopback

HERE = Path(__file__).parent
log = logging.getLogger("calibench.server")
CSRF_COOKIE = "calibench_csrf"
TOKEN_COOKIE = "calibench_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPLOAD_SLACK = 1_000_000
"""Multipart overhead allowed above the upload limit before the body is read."""

templates = Jinja2Templates(directory=str(HERE / "templates"))


def create_app(settings: ServerSettings, *, run_jobs: bool = True) -> FastAPI:
    if not settings.loopback_only and not settings.token:
        raise ConfigError(
            f"bound to {settings.host}, beyond this machine, the workbench needs an access token"
        )
    started = time.time()
    settings.workspace.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.url)
    try:
        upgrade(engine)
    except OperationalError as error:
        shown = settings.url.split("@")[-1]
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ConfigError(f"cannot open the database …{shown[-80:]}: {reason}") from error
    sessions = session_factory(engine)
    workbench = Workbench(
        sessions,
        settings.workspace,
        settings.max_upload_bytes,
        settings.perf_seconds,
        import_job_bytes=settings.import_job_bytes,
    )
    for path in workbench.sweep_leftovers(started):
        log.info("removed %s, left by a server that stopped", path.relative_to(settings.workspace))
    runner = JobRunner(settings.url, settings.workspace, settings.max_workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_jobs:
            runner.start()
        try:
            yield
        finally:
            if run_jobs:
                runner.stop()
            engine.dispose()

    app = FastAPI(
        title="calibench workbench",
        version=__version__,
        description="INT8 calibration workbench: every action of the pages, as JSON.",
        docs_url=None,  # FastAPI's Swagger page loads from a CDN; /api/docs is served locally
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.workbench = workbench
    app.state.runner = runner
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    from calibench.server import routes_api, routes_pages

    app.include_router(routes_api.router)
    app.include_router(routes_pages.router)
    _install_guard(app, settings)
    app.add_middleware(BodyLimit, settings=settings)
    _install_error_handlers(app, settings)
    return app


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _refuse(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return templates.TemplateResponse(
        request, "error.html", {"message": message, "status": status}, status_code=status
    )


def _install_guard(app: FastAPI, settings: ServerSettings) -> None:
    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if settings.loopback_only and not (is_loopback(host) or host == settings.host):
            # A page on another site can point a name at 127.0.0.1 (DNS rebinding).
            return _refuse(request, 400, f"unexpected Host header {host[:80]!r}")
        supplied: str | None = None
        if settings.token is not None:
            auth = request.headers.get("authorization", "")
            from_query = request.query_params.get("token")
            supplied = (
                from_query
                or request.cookies.get(TOKEN_COOKIE)
                or (auth[7:] if auth.lower().startswith("bearer ") else None)
            )
            if not supplied or not _same(supplied, settings.token):
                return _refuse(
                    request,
                    401,
                    "this workbench needs its access token: open the address with ?token=… "
                    "that `calibench serve` printed, or send 'Authorization: Bearer <token>'",
                )
            if from_query and request.method == "GET" and not _wants_json(request):
                query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(query)}" if query else "")
                redirect = RedirectResponse(target, status_code=303)
                _set_cookie(redirect, TOKEN_COOKIE, from_query)
                return redirect
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                return _refuse(request, 403, "cross-site request refused")
            if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                return _refuse(request, 403, "cross-site request refused")
        response = await call_next(request)
        if CSRF_COOKIE not in request.cookies and not _wants_json(request):
            _set_cookie(response, CSRF_COOKIE, csrf_token(request))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'self'; form-action 'self'",
        )
        return response


def body_limit(settings: ServerSettings) -> int:
    """The largest request body: the project form may carry a model and a dataset, each up to
    the upload limit."""
    return 2 * settings.max_upload_bytes + UPLOAD_SLACK


class BodyLimit:
    """Refuses a request body past the limit: at once when its Content-Length says so, else
    while it arrives (a chunked upload has no length to check up front)."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        limit, seen, exceeded = body_limit(self.settings), 0, False
        length = Headers(scope=scope).get("content-length") or ""
        if length.isdigit() and int(length) > limit:
            await self._too_large(scope, receive, send)
            return

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}  # the app stops reading
            return message

        async def unless_exceeded(message: Message) -> None:
            if not exceeded:
                await send(message)

        await self.app(scope, limited, unless_exceeded)
        if exceeded:  # whatever the app made of the cut body, the answer is 413
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _refuse(
            Request(scope),
            413,
            f"the upload is larger than the limit of {self.settings.max_upload_mb:g} MB "
            "(start the server with --max-upload-mb to change it)",
        )
        await response(scope, receive, send)


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", path="/")


def _same(a: str, b: str) -> bool:
    """Constant-time comparison of secrets, for any text a client sends."""
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def csrf_token(request: Request) -> str:
    """The form token of this browser (double-submit: a cookie and a hidden field)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf", None)
    if not token:
        token = secrets.token_urlsafe(24)
        request.state.csrf = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not _same(cookie, submitted):
        raise WorkbenchError(
            "the form's security token is missing or stale: reload the page and try again", 403
        )


def _disk_full_answer(request: Request, settings: ServerSettings) -> Response:
    refusal = disk_full_refusal(settings.workspace)
    return _refuse(request, refusal.status, refusal.message)


def _install_error_handlers(app: FastAPI, settings: ServerSettings) -> None:
    @app.exception_handler(WorkbenchError)
    async def workbench_error(request: Request, error: WorkbenchError) -> Response:
        if disk_full(error):
            return _disk_full_answer(request, settings)
        return _refuse(request, error.status, error.message)

    @app.exception_handler(CalibenchError)
    async def calibench_error(request: Request, error: CalibenchError) -> Response:
        if disk_full(error):
            return _disk_full_answer(request, settings)
        return _refuse(request, 400, str(error))

    async def maybe_disk_full(request: Request, error: Exception) -> Response:
        if disk_full(error):
            return _disk_full_answer(request, settings)
        return _internal_error(request, error)

    app.add_exception_handler(OSError, maybe_disk_full)
    app.add_exception_handler(DBAPIError, maybe_disk_full)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and error.detail == "Not Found":
            return _refuse(request, 404, f"there is no page {request.url.path[:100]}")
        return _refuse(request, error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        return _internal_error(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        if _wants_json(request):
            return JSONResponse(
                {"detail": "; ".join(problems), "errors": _plain(error.errors())},
                status_code=422,
            )
        return _refuse(request, 422, "; ".join(problems))


def _internal_error(request: Request, error: BaseException) -> Response:
    log.error("unexpected error on %s", request.url.path, exc_info=error)
    return _refuse(
        request,
        500,
        f"internal error ({type(error).__name__}); the server's output has the details",
    )


def _plain(errors: Any) -> Any:
    """Validation errors as JSON (pydantic may put exceptions in ``ctx``)."""
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    context = {"csrf": csrf_token(request), "version": __version__, **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


__all__ = ["check_csrf", "create_app", "page"]
