"""Who may reach the workbench and what a request may carry: the access token, the Host check
(DNS rebinding), cross-site refusal, the form token (CSRF) and the request body limit."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calibench.errors import WorkbenchError
from calibench.server.settings import ServerSettings, is_loopback
from calibench.server.web.templating import refuse, wants_json

CSRF_COOKIE = "calibench_csrf"
TOKEN_COOKIE = "calibench_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UPLOAD_SLACK = 1_000_000
"""Multipart overhead allowed above the upload limit before the body is read."""


def install_guard(app: FastAPI, settings: ServerSettings) -> None:
    """The checks every request passes before a route sees it, and the headers every answer
    carries."""

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if settings.loopback_only and not (is_loopback(host) or host == settings.host):
            # A page on another site can point a name at 127.0.0.1 (DNS rebinding).
            return refuse(request, 400, f"unexpected Host header {host[:80]!r}")
        supplied: str | None = None
        if settings.token is not None:
            auth = request.headers.get("authorization", "")
            from_query = request.query_params.get("token")
            supplied = (
                from_query
                or request.cookies.get(TOKEN_COOKIE)
                or (auth[7:] if auth.lower().startswith("bearer ") else None)
            )
            if not supplied or not same(supplied, settings.token):
                return refuse(
                    request,
                    401,
                    "this workbench needs its access token: open the address with ?token=… "
                    "that `calibench serve` printed, or send 'Authorization: Bearer <token>'",
                )
            if from_query and request.method == "GET" and not wants_json(request):
                query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = request.url.path + (f"?{urlencode(query)}" if query else "")
                redirect = RedirectResponse(target, status_code=303)
                _set_cookie(redirect, TOKEN_COOKIE, from_query)
                return redirect
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if origin and urlsplit(origin).netloc != request.headers.get("host"):
                return refuse(request, 403, "cross-site request refused")
            if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                return refuse(request, 403, "cross-site request refused")
        response = await call_next(request)
        if CSRF_COOKIE not in request.cookies and not wants_json(request):
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
        response = refuse(
            Request(scope),
            413,
            f"the upload is larger than the limit of {self.settings.max_upload_mb:g} MB "
            "(start the server with --max-upload-mb to change it)",
        )
        await response(scope, receive, send)


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", path="/")


def same(a: str, b: str) -> bool:
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
    if not cookie or not submitted or not same(cookie, submitted):
        raise WorkbenchError(
            "the form's security token is missing or stale: reload the page and try again", 403
        )
