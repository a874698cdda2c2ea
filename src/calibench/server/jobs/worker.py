"""A worker process: ``python -m calibench.server.jobs.worker JOB_ID WORKSPACE PARENT_PID`` runs
one job to its end (the database URL comes in the environment) and exits.

It reads its job's description from the database, runs the kind's body in the job's work
folder, and commits the result in the transaction that marks the job done; a job that fails
says why in words (a CalibenchError's own, or "internal error" with the details in its log)."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from calibench.errors import CalibenchError
from calibench.server.db import JobRow, make_engine, session_factory
from calibench.server.jobs.context import JobContext
from calibench.server.jobs.failures import is_permanent
from calibench.server.jobs.kinds import JobDescription
from calibench.server.jobs.lifecycle import commit_job, end_job
from calibench.server.jobs.local import WORKER_DATABASE_ENV
from calibench.server.jobs.progress import DatabaseProgress, StageBoard
from calibench.server.jobs.registry import kind_named, read_description
from calibench.server.jobs.states import JobState
from calibench.server.paths import shown
from calibench.server.workspace import Workspace


def job_logger(path: Path, job_id: int) -> logging.Logger:
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"calibench.job.{job_id}")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def run_job(context: JobContext, kind: str, description: JobDescription) -> dict[str, Any]:
    """Run a job's body in a fresh work folder: all a worker does before the commit, here or on
    another machine (which reports the context's progress back instead of writing it)."""
    shutil.rmtree(context.work, ignore_errors=True)
    context.work.mkdir(parents=True)
    context.log.info("job %d (%s) started in process %d", context.job_id, kind, os.getpid())
    return kind_named(kind).run(context, description)


def worker_main(job_id: int, database_url: str, workspace: str, parent_pid: int) -> None:
    """Run one job to its end."""
    _exit_with_parent(parent_pid)
    ws = Workspace(Path(workspace))
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    logger = job_logger(ws.log_path(job_id), job_id)
    with sessions() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return
        kind, stored, board = job.kind, dict(job.description or {}), StageBoard.from_db(job.stages)
    try:
        description = read_description(kind, stored)
    except CalibenchError as error:  # a kind or a version this calibench does not know
        logger.error("%s", error)
        _fail(sessions, job_id, shown(str(error), ws.root), ws)
        engine.dispose()
        return
    if not board.entries:
        board = StageBoard(s.value for s in description.stages())
    context = JobContext(job_id, ws, DatabaseProgress(sessions, job_id, board), logger)
    try:
        result = run_job(context, kind, description)
        with sessions.begin() as session:
            job = session.get(JobRow, job_id)
            assert job is not None
            done = commit_job(session, job, result, ws, board)
        if done:
            logger.info("job %d done", job_id)
    except CalibenchError as error:
        logger.error("%s", error)
        _fail(sessions, job_id, shown(str(error), ws.root), ws, is_permanent(error))
    except Exception as error:  # the log keeps the traceback; the page shows the words
        logger.error("%s", traceback.format_exc())
        words = f"internal error ({type(error).__name__}: {error}); the job's log has the details"
        _fail(sessions, job_id, shown(words, ws.root), ws)
    finally:
        shutil.rmtree(context.work, ignore_errors=True)
        engine.dispose()


def _fail(
    sessions: sessionmaker[Session],
    job_id: int,
    message: str,
    ws: Workspace,
    permanent: bool = False,
) -> None:
    with sessions.begin() as session:
        job = session.get(JobRow, job_id)
        if job is not None and not JobState(job.state).finished:
            end_job(session, job, JobState.FAILED, message, ws, permanent)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker does not outlive its server: a restarted server would not know it."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    job_id, workspace, parent = argv
    worker_main(int(job_id), os.environ[WORKER_DATABASE_ENV], workspace, int(parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
