"""Jobs: a description (kind + inputs) run by a function in a worker process.

A job's function sees only its inputs, a work folder and a :class:`JobContext` for progress and
its log; it returns a JSON result naming the files it wrote in the work folder. Committing that
result (moving files into place, updating projects) is a separate step, so the same function can
later run on another machine and have its result committed here.

The :class:`JobRunner` lives in the server process: it starts queued jobs in worker processes
(at most ``max_workers`` at once), terminates cancelled ones, and at start marks the jobs a
previous server left running as failed: their workers died with it and their half-made files are
removed, never shown as results.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from calibench.errors import CalibenchError
from calibench.server.db import JobRow, make_engine, now, session_factory
from calibench.server.paths import shown

log = logging.getLogger("calibench.server")

WORKER_DATABASE_ENV = "CALIBENCH_WORKER_DATABASE_URL"
PROGRESS_INTERVAL = 0.25
STOPPED = "the server was stopped while this job ran; Retry runs it again"
WAITING = "waiting for the machine"
"""The stage shown while a job waits for another job's speed measurement to end."""
HEARTBEAT = 5.0
"""Seconds between two renewals of a runner's lease on its running jobs."""
LEASE = 30.0
"""A running job whose runner has not renewed its lease for this long has lost its server."""
"""Seconds between two progress writes of one stage (the first and last are always written)."""


@dataclass
class JobKind:
    stages: list[str]
    run: Callable[[JobContext, dict[str, Any]], dict[str, Any]]
    commit: Callable[[Session, JobRow, dict[str, Any], Path], None]
    """Applies a finished job's result to the database (in the transaction that marks it done)."""
    abandon: Callable[[Session, JobRow, Path], None]
    """Called when the job ends without a result (failed, cancelled, interrupted)."""


KINDS: dict[str, JobKind] = {}


def job_dir(workspace: Path, job_id: int) -> Path:
    return workspace / "jobs" / str(job_id)


def log_path(workspace: Path, job_id: int) -> Path:
    return job_dir(workspace, job_id) / "job.log"


def work_dir(workspace: Path, job_id: int) -> Path:
    return job_dir(workspace, job_id) / "work"


class JobContext:
    """What a running job may do: report progress by stage, and write to its log."""

    def __init__(
        self,
        job_id: int,
        sessions: sessionmaker[Session] | None,
        workspace: Path,
        stages: list[str],
        logger: logging.Logger,
    ) -> None:
        self.job_id = job_id
        self.workspace = workspace
        self.work = work_dir(workspace, job_id)
        self.log = logger
        self._sessions = sessions
        self._stages: list[dict[str, Any]] = [{"name": s, "done": 0, "total": 0} for s in stages]
        self._last = 0.0
        self._stage: str | None = None
        self._waiting = False

    def progress(self, stage: str, done: int, total: int) -> None:
        entry: dict[str, Any] | None = next((s for s in self._stages if s["name"] == stage), None)
        if entry is None:
            entry = {"name": stage, "done": 0, "total": 0}
            self._stages.append(entry)
        # Stages before this one are finished, whatever they last reported.
        for earlier in self._stages[: self._stages.index(entry)]:
            if earlier["total"] == 0 or earlier["done"] < earlier["total"]:
                earlier["done"] = earlier["total"] = max(1, int(earlier["total"]))
        entry["done"], entry["total"] = int(done), int(total)
        changed = stage != self._stage
        if changed:
            self.log.info("stage: %s", stage)
        self._stage = stage
        moment = time.monotonic()
        if changed or done >= total or moment - self._last >= PROGRESS_INTERVAL:
            self._last = moment
            self._write()

    def waiting(self, on: bool) -> None:
        """Show that the job waits for the machine (another job is timing its model)."""
        self._waiting = on
        self._write()

    def _write(self) -> None:
        if self._sessions is None:
            return
        with self._sessions.begin() as session:
            job = session.get(JobRow, self.job_id)
            if job is not None and job.state == "running":
                job.stage = WAITING if self._waiting else self._stage
                job.stages = [dict(s) for s in self._stages]


def _job_logger(path: Path, job_id: int) -> logging.Logger:
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"calibench.job.{job_id}")
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


def worker_main(job_id: int, database_url: str, workspace: str, parent_pid: int) -> None:
    """Entry point of a worker process: run one job to its end."""
    import calibench.server.tasks  # noqa: F401  (registers the job kinds)

    _exit_with_parent(parent_pid)
    root = Path(workspace)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    logger = _job_logger(log_path(root, job_id), job_id)
    with sessions() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return
        kind, inputs = job.kind, dict(job.description.get("inputs", {}))
        stages = [s["name"] for s in job.stages]
    spec = KINDS[kind]
    context = JobContext(job_id, sessions, root, stages or spec.stages, logger)
    shutil.rmtree(context.work, ignore_errors=True)
    context.work.mkdir(parents=True)
    logger.info("job %d (%s) started in process %d", job_id, kind, os.getpid())
    try:
        result = spec.run(context, inputs)
        with sessions.begin() as session:
            job = session.get(JobRow, job_id)
            assert job is not None
            if job.state != "running":
                return
            if job.cancel_requested:  # asked while the work was ending: the cancel wins
                end_job(session, job, "cancelled", "cancelled by the user", root)
                return
            spec.commit(session, job, result, root)
            # The figures now live with the project; the job keeps what it handed over.
            job.result = {"committed": sorted(result), "files": result.get("files", {})}
            job.state, job.finished_at = "done", now()
            job.stages = [
                {**s, "done": max(1, s["total"]), "total": max(1, s["total"])}
                for s in context._stages
            ]
            job.message = None
        logger.info("job %d done", job_id)
    except CalibenchError as error:
        logger.error("%s", error)
        _finish(sessions, job_id, "failed", shown(str(error), root), root)
    except Exception as error:  # the log keeps the traceback; the page shows the words
        logger.error("%s", traceback.format_exc())
        _finish(
            sessions,
            job_id,
            "failed",
            shown(
                f"internal error ({type(error).__name__}: {error}); the job's log has the details",
                root,
            ),
            root,
        )
    finally:
        shutil.rmtree(context.work, ignore_errors=True)
        engine.dispose()


def _finish(
    sessions: sessionmaker[Session], job_id: int, state: str, message: str, workspace: Path
) -> None:
    with sessions.begin() as session:
        job = session.get(JobRow, job_id)
        if job is not None and not job.finished:
            end_job(session, job, state, message, workspace)


def end_job(session: Session, job: JobRow, state: str, message: str, workspace: Path) -> None:
    """A job ends without a result: record why, and let its kind undo what it prepared."""
    job.state, job.message, job.finished_at = state, message, now()
    KINDS[job.kind].abandon(session, job, workspace)


def _exit_with_parent(parent_pid: int) -> None:
    """A worker does not outlive its server: a restarted server would not know it."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


class JobRunner:
    """Starts queued jobs in worker processes and follows them (one thread in the server)."""

    def __init__(
        self, database_url: str, workspace: Path, max_workers: int = 2, poll: float = 0.2
    ) -> None:
        self.database_url = database_url
        self.workspace = workspace
        self.max_workers = max(1, max_workers)
        self.poll = poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sessions = session_factory(make_engine(database_url))
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
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
        for job_id, proc in list(self._procs.items()):
            _stop_process(proc)
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                if job is not None and not job.finished:
                    end_job(
                        session,
                        job,
                        "failed",
                        STOPPED,
                        self.workspace,
                    )
            shutil.rmtree(work_dir(self.workspace, job_id), ignore_errors=True)

    def recover(self) -> None:
        """Fail the running jobs whose server is gone: any server that has not renewed its
        lease for ``LEASE`` seconds (another machine, a recreated container), and at once a
        server on this machine whose process has ended (a restart). Their workers died with
        them, or are killed."""
        host = socket.gethostname()
        moment = now()
        with self.sessions.begin() as session:
            running = session.scalars(select(JobRow).where(JobRow.state == "running")).all()
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
                if owner_host == host and job.worker_pid and _is_worker_of(job.worker_pid, job.id):
                    _kill(job.worker_pid)
                stage = f" during {job.stage}" if job.stage else ""
                end_job(
                    session,
                    job,
                    "failed",
                    f"interrupted{stage}: the server stopped while this job ran. Nothing it "
                    "had produced was kept; Retry runs it again.",
                    self.workspace,
                )
                shutil.rmtree(work_dir(self.workspace, job.id), ignore_errors=True)

    def _renew(self) -> None:
        """Renew the lease on the jobs this runner's workers run."""
        if not self._procs:
            return
        with self.sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(self._procs)), JobRow.runner == self.id)
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
        self._reap()
        self._cancel_requested()
        free = self.max_workers - len(self._procs)
        if free <= 0:
            return
        with self.sessions() as session:
            queued = session.scalars(
                select(JobRow.id).where(JobRow.state == "queued").order_by(JobRow.id).limit(free)
            ).all()
        started = [job_id for job_id in queued if self._claim(job_id)]
        for job_id in started:
            # A fresh interpreter per job: nothing of the server's state leaks into it, and the
            # database URL travels in the environment, not on the command line.
            env = {**os.environ, WORKER_DATABASE_ENV: self.database_url}
            output = log_path(self.workspace, job_id)
            output.parent.mkdir(parents=True, exist_ok=True)
            with output.open("ab") as sink:
                # Its own session: Ctrl-C on the server stops the server, which then stops the
                # worker; a worker whose server is killed stops itself (parent watch).
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "calibench.server.worker",
                        str(job_id),
                        str(self.workspace),
                        str(os.getpid()),
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._procs[job_id] = proc
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                if job is not None:
                    job.worker_pid = proc.pid

    def _claim(self, job_id: int) -> bool:
        """Take a queued job, unless a cancel or another server got to it first."""
        moment = now()
        with self.sessions.begin() as session:
            claimed = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state == "queued")
                .values(
                    state="running",
                    started_at=moment,
                    heartbeat_at=moment,
                    runner=self.id,
                    attempts=JobRow.attempts + 1,
                    message=None,
                )
            )
            return bool(getattr(claimed, "rowcount", 0) == 1)

    def _reap(self) -> None:
        for job_id, proc in list(self._procs.items()):
            if proc.poll() is None:
                continue
            del self._procs[job_id]
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                # Only a job still running on this very worker: a retried job is queued again.
                if job is not None and job.state == "running" and job.worker_pid == proc.pid:
                    end_job(
                        session,
                        job,
                        "failed",
                        f"the worker process ended unexpectedly (exit code {proc.returncode})",
                        self.workspace,
                    )
                    shutil.rmtree(work_dir(self.workspace, job_id), ignore_errors=True)

    def _cancel_requested(self) -> None:
        with self.sessions() as session:
            wanted = session.scalars(
                select(JobRow.id).where(JobRow.cancel_requested, JobRow.state == "running")
            ).all()
        for job_id in wanted:
            proc = self._procs.pop(job_id, None)
            if proc is not None:
                _stop_process(proc)
            with self.sessions.begin() as session:
                job = session.get(JobRow, job_id)
                if job is not None and not job.finished:
                    end_job(session, job, "cancelled", "cancelled by the user", self.workspace)
            shutil.rmtree(work_dir(self.workspace, job_id), ignore_errors=True)

    def running(self) -> list[int]:
        return list(self._procs)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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


def _is_worker_of(pid: int, job_id: int) -> bool:
    """Whether ``pid`` is still the worker of that job: pids are reused, after a reboot too."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"calibench.server.worker" in argv and str(job_id).encode() in argv


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, 9)
