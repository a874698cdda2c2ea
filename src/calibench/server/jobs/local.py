"""The local executor: each job in a fresh worker process on this machine
(``python -m calibench.server.jobs.worker JOB_ID WORKSPACE PARENT_PID``).

A fresh interpreter per job: nothing of the server's state leaks into it. The worker reads its
job from the database (its URL travels in the environment, not on the command line), writes its
progress there and commits its own result; its output goes to the job's log."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from calibench.server.jobs.executor import Assignment, Execution, Executor, Exited
from calibench.server.jobs.states import ProgressEvent, Waiting
from calibench.server.workspace import Workspace

WORKER_MODULE = "calibench.server.jobs.worker"
EARLIER_WORKER_MODULES = ("calibench.server.worker",)
"""Where the worker lived in earlier versions: after an upgrade, recovery still recognises (and
stops) a worker the previous server left running."""
WORKER_DATABASE_ENV = "CALIBENCH_WORKER_DATABASE_URL"
STOP_GRACE = 10.0
"""Seconds a stopped worker has to end before it is killed."""


class LocalProcess(Execution):
    def __init__(self, job_id: int, proc: subprocess.Popen[bytes]) -> None:
        self.job_id = job_id
        self.proc = proc
        self.worker_pid = proc.pid

    def events(self) -> list[ProgressEvent | Waiting]:
        return []  # the worker writes its progress to the database itself

    def outcome(self) -> Exited | None:
        code = self.proc.poll()
        return None if code is None else Exited(code)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalProcessExecutor(Executor):
    def __init__(self, database_url: str, workspace: Workspace) -> None:
        self.database_url = database_url
        self.workspace = workspace

    def start(self, job: Assignment) -> LocalProcess:
        env = {**os.environ, WORKER_DATABASE_ENV: self.database_url}
        output = self.workspace.log_path(job.job_id)
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("ab") as sink:
            # Its own session: Ctrl-C on the server stops the server, which then stops the
            # worker; a worker whose server is killed stops itself (it watches its parent).
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    WORKER_MODULE,
                    str(job.job_id),
                    str(self.workspace.root),
                    str(os.getpid()),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return LocalProcess(job.job_id, proc)

    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        if worker_pid and _is_worker_of(worker_pid, job_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(worker_pid, 9)


def _is_worker_of(pid: int, job_id: int) -> bool:
    """Whether ``pid`` is still the worker of that job: pids are reused, after a reboot too."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    modules = (WORKER_MODULE, *EARLIER_WORKER_MODULES)
    return any(m.encode() in argv for m in modules) and str(job_id).encode() in argv
