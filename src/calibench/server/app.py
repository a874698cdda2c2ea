"""The FastAPI application, composed: settings, database, job runner and workbench, the domain
routers (pages and JSON API side by side), the security checks and the error handlers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from calibench import __version__
from calibench.errors import ConfigError
from calibench.server.db import make_engine, session_factory
from calibench.server.jobs.executor import Executor
from calibench.server.jobs.local import LocalProcessExecutor
from calibench.server.jobs.ray_executor import Cluster, RayExecutor, check_cluster
from calibench.server.jobs.remote import ByTarget, RemoteExecutor
from calibench.server.jobs.runner import JobRunner
from calibench.server.migrate import upgrade
from calibench.server.settings import ServerSettings
from calibench.server.web import manual, system
from calibench.server.web.compare import routes as compare
from calibench.server.web.datasets import routes as datasets
from calibench.server.web.handlers import install_error_handlers
from calibench.server.web.jobs import routes as jobs
from calibench.server.web.models import routes as models
from calibench.server.web.projects import routes as projects
from calibench.server.web.security import BodyLimit, install_guard
from calibench.server.web.targets import routes as targets
from calibench.server.web.templating import STATIC
from calibench.server.web.workbench import Workbench
from calibench.server.workspace import Workspace

log = logging.getLogger("calibench.server")


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
    workbench = Workbench(sessions, settings)
    for path in workbench.sweep_leftovers(started):
        log.info("removed %s, left by a server that stopped", path.relative_to(settings.workspace))
    cluster, executor = _executor(settings)
    runner = JobRunner(settings.url, settings.workspace, settings.max_workers, executor=executor)

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
    app.state.cluster = cluster
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(system.router)
    app.include_router(manual.pages)
    # each domain: its JSON API, then its pages
    for domain in (models, datasets, projects, compare, jobs, targets):
        app.include_router(domain.api)
        app.include_router(domain.pages)
    install_guard(app, settings)
    app.add_middleware(BodyLimit, settings=settings)
    install_error_handlers(app, settings)
    return app


def _executor(settings: ServerSettings) -> tuple[Cluster | None, Executor | None]:
    """With ``--ray``, the cluster (checked now: a clear error at start, not at the first job)
    and its executor; without, nothing (the runner's own), and Ray is never imported."""
    if settings.ray is None:
        return None, None
    cluster = check_cluster(settings.ray)
    workspace = Workspace(settings.workspace)
    local = LocalProcessExecutor(settings.url, workspace)
    ray = RayExecutor(cluster.address, workspace, local)
    return cluster, ByTarget(ray, RemoteExecutor(workspace))


__all__ = ["create_app"]
