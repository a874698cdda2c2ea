"""The remote executor: a job whose description names a target runs there, over SSH, through
``calibench.targets`` (uploads by hash, the private environment, streamed progress).

What runs on the target is the job's own body: ``remote_worker`` (the local worker's
``run_job``, without a database) in the target's calibench, so every kind needs nothing of its
own here. The inputs the description names (``input_paths()``) go up, the result's JSON and the
files it names come back into the job's work folder, and the runner commits them in the
server's transaction, as for any executor. A lost connection or a killed process ends in
``Failed`` with the target's words; a cancel stops the remote process group and removes the
remote folder (``RemoteJob.stop``).

``ByTarget`` is the runner's executor: local for a job on this machine, remote otherwise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from calibench.errors import CalibenchError
from calibench.server.jobs.executor import Assignment, Execution, Executor, Failed, Finished
from calibench.server.jobs.failures import is_permanent
from calibench.server.jobs.kinds import CalibrationJob
from calibench.server.jobs.registry import read_description
from calibench.server.jobs.states import ProgressEvent, Waiting
from calibench.server.paths import shown
from calibench.server.workspace import Workspace
from calibench.targets.assets import Input, Output
from calibench.targets.job import JobFailed, RemoteJob
from calibench.targets.registry import Registry

WORKER_MODULE = "calibench.server.jobs.remote_worker"
RESULT = "result.json"
DESCRIPTION = "description.json"


def target_of(job: Assignment) -> str | None:
    """The target a stored description names (None: this machine; rows from before targets)."""
    inputs = job.description.get("inputs")
    target = inputs.get("target") if isinstance(inputs, dict) else None
    return str(target) if target else None


class _Ended(Execution):
    """A job that could not start (its target is gone): its outcome at once."""

    def __init__(self, job_id: int, message: str) -> None:
        self.job_id = job_id
        self.message = message

    def events(self) -> list[ProgressEvent | Waiting]:
        return []

    def outcome(self) -> Failed:
        return Failed(self.message)

    def stop(self) -> None:
        return None


class RemoteExecution(Execution):
    def __init__(self, job_id: int, job: RemoteJob, work: Path, log: Path) -> None:
        self.job_id = job_id
        self.job = job
        self.work = work
        self.log = log
        self._seen: set[str] = set()

    def events(self) -> list[ProgressEvent | Waiting]:
        found: list[ProgressEvent | Waiting] = []
        lines = []
        for event in self.job.events():
            if event.text is not None:
                lines.append(event.text)
                continue
            try:
                found.append(ProgressEvent.parse(event.stage, event.done, event.total))
            except ValueError:  # the targets' own steps (the setup's wheels): in the log, once
                if event.stage not in self._seen:
                    self._seen.add(event.stage)
                    lines.append(f"stage: {event.stage}")
        if lines:
            with self.log.open("a", encoding="utf-8") as sink:
                sink.write("".join(f"{line}\n" for line in lines))
        return found

    def outcome(self) -> Finished | Failed | None:
        outcome = self.job.outcome()
        if outcome is None:
            return None
        if isinstance(outcome, JobFailed):
            return Failed(str(outcome.error), permanent=is_permanent(outcome.error))
        try:
            return Finished(json.loads((self.work / RESULT).read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            return Failed(f"the result that came back from the target is unreadable ({error})")

    def stop(self) -> None:
        self.job.stop()


class RemoteExecutor(Executor):
    """Runs a job on the target its description names (the workspace's ``targets.json``)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def start(self, job: Assignment) -> Execution:
        ws = self.workspace
        try:
            description = read_description(job.kind, job.description)
            name = target_of(job)
            assert name is not None
            target = Registry(ws.root).get(name)
        except CalibenchError as error:
            return _Ended(job.job_id, shown(str(error), ws.root))
        work = ws.work_dir(job.job_id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        stored = ws.job_dir(job.job_id) / DESCRIPTION
        stored.write_text(json.dumps({"kind": job.kind, "description": job.description}))
        argv: list[str | Input | Output] = [str(job.job_id), Input(stored), Output(work / RESULT)]
        for relative in dict.fromkeys(description.input_paths()):  # one dataset, two roles
            argv += [relative, Input(ws.path(relative))]
        phase = "calibration" if job.kind == CalibrationJob.KIND else "inference"
        log = ws.log_path(job.job_id)
        with log.open("a", encoding="utf-8") as sink:
            sink.write(f"job {job.job_id} ({job.kind}) runs on target {target.name} "
                       f"({target.address})\n")  # fmt: skip
        running = RemoteJob(target, argv, phase, ws.root / "wheelhouse", WORKER_MODULE).start()
        return RemoteExecution(job.job_id, running, work, log)

    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        """A remote run whose server is gone stops with its SSH connection's end; the next run
        on that target sweeps its folder."""
        return None


class ByTarget(Executor):
    """The runner's executor: each job on the machine its description names."""

    def __init__(self, local: Executor, remote: Executor) -> None:
        self.local = local
        self.remote = remote

    def start(self, job: Assignment) -> Execution:
        return (self.remote if target_of(job) else self.local).start(job)

    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        self.local.kill_orphan(job_id, worker_pid)
