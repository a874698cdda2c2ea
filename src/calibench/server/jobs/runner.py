"""The :class:`JobRunner` lives in the server process: it hands queued jobs to its executor (at
most ``max_workers`` at once), stops cancelled ones, commits the results executors bring back,
and keeps a lease on its running jobs. At start, and at each renewal, it fails the jobs a server
that is gone left running: their workers died with it (or are killed) and their half-made files
are removed, never shown as results."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select, update

from calibench.errors import CalibenchError
from calibench.server.db import JobRow, make_engine, now, session_factory
from calibench.server.jobs.executor import Assignment, Execution, Executor, Exited, Failed
from calibench.server.jobs.lifecycle import CANCELLED, commit_job, end_job
from calibench.server.jobs.local import LocalProcessExecutor
from calibench.server.jobs.progress import DatabaseProgress, StageBoard
from calibench.server.jobs.remote import ByTarget, RemoteExecutor
from calibench.server.jobs.states import JobState, ProgressEvent
from calibench.server.paths import shown
from calibench.server.workspace import Workspace

log = logging.getLogger("calibench.server")

STOPPED = "the server was stopped while this job ran; Retry runs it again"
HEARTBEAT = 5.0
"""Seconds between two renewals of a runner's lease on its running jobs."""
LEASE = 30.0
"""A running job whose runner has not renewed its lease for this long has lost its server."""


class JobRunner:
    """Starts queued jobs on its executor and follows them (one thread in the server)."""

    def __init__(
        self,
        database_url: str,
        workspace: Path,
        max_workers: int = 2,
        poll: float = 0.2,
        executor: Executor | None = None,
    ) -> None:
        self.database_url = database_url
        self.workspace = Workspace(workspace)
        self.max_workers = max(1, max_workers)
        self.poll = poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sessions = session_factory(make_engine(database_url))
        self.executor = executor or ByTarget(
            LocalProcessExecutor(database_url, self.workspace), RemoteExecutor(self.workspace)
        )
        self._running: dict[int, Execution] = {}
        self._progress: dict[int, DatabaseProgress] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="job-runner")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for job_id, execution in list(self._running.items()):
            execution.stop()
            self._end(job_id, JobState.FAILED, STOPPED)

    def recover(self) -> None:
        """Fail the running jobs whose server is gone: any server that has not renewed its
        lease for ``LEASE`` seconds (another machine, a recreated container), and at once a
        server on this machine whose process has ended (a restart). Their workers died with
        them, or are killed."""
        host = socket.gethostname()
        moment = now()
        with self.sessions.begin() as session:
            running = session.scalars(select(JobRow).where(JobRow.state == JobState.RUNNING)).all()
            for job in running:
                if job.runner == self.id:
                    continue
                owner_host, owner_pid = _runner_parts(job.runner)
                renewed = _aware(job.heartbeat_at or job.started_at)
                gone = renewed is None or (moment - renewed).total_seconds() > LEASE
                if owner_host == host and owner_pid is not None:
                    # On this machine a server that has exited is known at once (a reused pid
                    # only delays that until its lease runs out).
                    gone = gone or not _process_exists(owner_pid)
                if not gone:
                    continue
                if owner_host == host and job.worker_pid:
                    self.executor.kill_orphan(job.id, job.worker_pid)
                stage = f" during {job.stage}" if job.stage else ""
                end_job(
                    session,
                    job,
                    JobState.FAILED,
                    f"interrupted{stage}: the server stopped while this job ran. Nothing it "
                    "had produced was kept; Retry runs it again.",
                    self.workspace,
                )
                shutil.rmtree(self.workspace.work_dir(job.id), ignore_errors=True)

    def _renew(self) -> None:
        """Renew the lease on the jobs this runner's executor runs."""
        if not self._running:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(self._running)), JobRow.runner == self.id)
                .values(heartbeat_at=now())
            )

    def _loop(self) -> None:
        last_renewal = 0.0
        while not self._stop.is_set():
            try:
                self.tick()
                if time.monotonic() - last_renewal > HEARTBEAT:
                    last_renewal = time.monotonic()
                    self._renew()
                    self.recover()
            except Exception:  # keep the runner alive; the next tick tries again
                log.exception("job runner")
            self._stop.wait(self.poll)

    def tick(self) -> None:
        self._follow()
        self._cancel_requested()
        free = self.max_workers - len(self._running)
        if free <= 0:
            return
        with self.sessions() as session:
            queued = session.scalars(
                select(JobRow.id)
                .where(JobRow.state == JobState.QUEUED)
                .order_by(JobRow.id)
                .limit(free)
            ).all()
        started = [job_id for job_id in queued if self._claim(job_id)]
        for job_id in started:
            assignment = self._assignment(job_id)
            execution = self.executor.start(assignment)
            self._running[job_id] = execution
            self._progress[job_id] = DatabaseProgress(
                self.sessions, job_id, StageBoard(assignment.stages)
            )
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                if job is not None:
                    job.worker_pid = execution.worker_pid

    def _claim(self, job_id: int) -> bool:
        """Take a queued job, unless a cancel or another server got to it first."""
        moment = now()
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == JobState.QUEUED)
                .values(
                    state=JobState.RUNNING,
                    started_at=moment,
                    heartbeat_at=moment,
                    runner=self.id,
                    attempts=JobRow.attempts + 1,
                    message=None,
                )
            )
            return bool(getattr(claimed, "rowcount", 0) == 1)

    def _assignment(self, job_id: int) -> Assignment:
        with self.sessions() as session:
            job = session.get(JobRow, job_id)
            assert job is not None
            stages = tuple(s["name"] for s in job.stages)
            return Assignment(job_id, job.kind, dict(job.description), stages)

    def _follow(self) -> None:
        """Write what executors report, and take in the jobs whose work has ended."""
        for job_id, execution in list(self._running.items()):
            progress = self._progress[job_id]
            for event in execution.events():
                if isinstance(event, ProgressEvent):
                    progress.report(event)
                else:
                    progress.waiting(event.on)
            outcome = execution.outcome()
            if outcome is None:
                continue
            del self._running[job_id], self._progress[job_id]
            if isinstance(outcome, Exited):
                self._exited(job_id, execution, outcome.code)
            elif isinstance(outcome, Failed):
                self._end(job_id, JobState.FAILED, outcome.message, outcome.permanent)
            else:
                self._commit(job_id, outcome.result, progress.board)

    def _exited(self, job_id: int, execution: Execution, code: int) -> None:
        with self.sessions.begin() as session:
            job = session.get(JobRow, job_id)
            # Only a job still running on this very worker: a retried job is queued again.
            if job is None or job.state != JobState.RUNNING:
                return
            if job.worker_pid != execution.worker_pid:
                return
            end_job(
                session,
                job,
                JobState.FAILED,
                f"the worker process ended unexpectedly (exit code {code})",
                self.workspace,
            )
        shutil.rmtree(self.workspace.work_dir(job_id), ignore_errors=True)

    def _commit(self, job_id: int, result: dict[str, object], board: StageBoard) -> None:
        """Apply a result an executor brought back, in the transaction that marks it done."""
        try:
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                if job is not None:
                    commit_job(session, job, result, self.workspace, board)
        except Exception as error:  # the job fails in words; the server goes on
            log.exception("committing job %d", job_id)
            self._end(job_id, JobState.FAILED, shown(_commit_failure(error), self.workspace.root))
        shutil.rmtree(self.workspace.work_dir(job_id), ignore_errors=True)

    def _end(self, job_id: int, state: JobState, message: str, permanent: bool = False) -> None:
        """End a job of this runner's that has not ended, and remove what its work left."""
        with self.sessions.begin() as session:
            job = session.get(JobRow, job_id)
            if job is not None and not JobState(job.state).finished:
                end_job(session, job, state, message, self.workspace, permanent)
        shutil.rmtree(self.workspace.work_dir(job_id), ignore_errors=True)

    def _cancel_requested(self) -> None:
        with self.sessions() as session:
            wanted = session.scalars(
                select(JobRow.id).where(JobRow.cancel_requested, JobRow.state == JobState.RUNNING)
            ).all()
        for job_id in wanted:
            execution = self._running.pop(job_id, None)
            self._progress.pop(job_id, None)
            if execution is not None:
                execution.stop()
            self._end(job_id, JobState.CANCELLED, CANCELLED)

    def running(self) -> list[int]:
        return list(self._running)


def _commit_failure(error: Exception) -> str:
    if isinstance(error, CalibenchError):
        return str(error)
    return f"internal error while committing ({type(error).__name__}: {error})"


def _runner_parts(runner: str | None) -> tuple[str | None, int | None]:
    """``host:pid:nonce`` → (host, pid)."""
    if not runner:
        return None, None
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    return host, int(pid) if pid.isdigit() else None


def _process_exists(pid: int) -> bool:
    """Whether a process with this pid runs (a zombie has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in ("Z", "X")


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment
