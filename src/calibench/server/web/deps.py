"""What a route may ask for, as ``Annotated`` dependencies: the workbench, the job runner, the
settings, and a checked form token.

There is no database session dependency on purpose: every read and write happens inside one
service call, which opens and closes its own session. (A session handed out by a dependency
would be closed after the route, possibly on another thread than the one that used it, which
SQLite's connections refuse.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request

from calibench.server.jobs.runner import JobRunner
from calibench.server.web.security import check_csrf
from calibench.server.web.workbench import Workbench


def _workbench(request: Request) -> Workbench:
    workbench: Workbench = request.app.state.workbench
    return workbench


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def _csrf(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> None:
    check_csrf(request, csrf_token)


WorkbenchDep = Annotated[Workbench, Depends(_workbench)]
RunnerDep = Annotated[JobRunner, Depends(_runner)]
CsrfDep = Annotated[None, Depends(_csrf)]
"""A page form's token, checked against this browser's cookie (403 when it does not match)."""
