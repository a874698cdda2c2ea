"""Where a job's body runs: the seam between the runner (the server's queue, leases, commits)
and the machine that does the work.

An :class:`Executor` is handed a queued job's description and starts it somewhere (a worker
process here, a remote machine over SSH, a cluster); the :class:`Execution` it returns streams
the job's progress, can be stopped, and ends in an :data:`Outcome`. A result comes back as the
files in the job's work folder and the JSON that names them; the runner commits it into the
workspace in the server's database transaction, never the executor.

The one exception is the local executor's worker: it shares the server's database and commits
its own result (in the same transaction a runner's commit would use), so its outcome only says
that the worker has exited; a worker that exited without ending its job died.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from calibench.server.jobs.states import ProgressEvent, Waiting


@dataclass(frozen=True)
class Assignment:
    """A job as the runner hands it to an executor (all of it, as stored in its row)."""

    job_id: int
    kind: str
    description: dict[str, Any]
    """The description's JSON (``{"version", "inputs"}``): it travels as it is stored."""
    stages: tuple[str, ...]
    """The bars the job starts with."""


@dataclass(frozen=True)
class Finished:
    """The work ended with a result: its files lie in the job's work folder, named in it."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """The work ended without a result, for this reason (words for the person)."""

    message: str
    permanent: bool = False
    """Whether running the job again would fail the same way (:mod:`.failures`)."""


@dataclass(frozen=True)
class Exited:
    """The worker process ended; it ended its job itself, or died (then ``code`` says how)."""

    code: int


Outcome = Finished | Failed | Exited


class Execution(ABC):
    """One job started by an executor."""

    job_id: int
    worker_pid: int | None = None
    """The local process that runs the job, recorded on its row (recovery kills only it)."""

    @abstractmethod
    def events(self) -> list[ProgressEvent | Waiting]:
        """The progress reported since the last call, for the runner to write to the job's row
        (empty where the worker writes its own)."""

    @abstractmethod
    def outcome(self) -> Outcome | None:
        """How the work ended; None while it runs."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the work (a cancel, the server stopping) and wait until it has stopped; what it
        had made is the runner's to remove."""


class Executor(ABC):
    @abstractmethod
    def start(self, job: Assignment) -> Execution:
        """Start the job's body; it reads its inputs from the workspace and writes its files in
        the job's work folder."""

    @abstractmethod
    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        """Stop what still runs a job whose server is gone (recovery), and only that: a
        recorded pid may belong to another process by now."""
