"""The runner against a fake executor: what a remote executor (SSH, a cluster) would do —
relay progress, bring a result back, fail, be stopped — lands in the database as with local
worker processes, and the runner commits the results."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from calibench.server.db import Base, DatasetRow, JobRow, ModelRow, ProjectRow, make_engine
from calibench.server.db import session_factory as make_sessions
from calibench.server.jobs.executor import (
    Assignment,
    Execution,
    Executor,
    Failed,
    Finished,
    Outcome,
)
from calibench.server.jobs.kinds import BaselineJob, ImportJob
from calibench.server.jobs.lifecycle import queue_job, request_cancel
from calibench.server.jobs.runner import JobRunner
from calibench.server.jobs.states import JobState, ProgressEvent, Stage, Waiting
from calibench.server.workspace import Workspace


class FakeExecution(Execution):
    def __init__(self, job: Assignment) -> None:
        self.job_id = job.job_id
        self.pending: list[ProgressEvent | Waiting] = []
        self.result: Outcome | None = None
        self.stopped = False

    def events(self) -> list[ProgressEvent | Waiting]:
        sent, self.pending = self.pending, []
        return sent

    def outcome(self) -> Outcome | None:
        return self.result

    def stop(self) -> None:
        self.stopped = True


@dataclass
class FakeExecutor(Executor):
    started: dict[int, tuple[Assignment, FakeExecution]] = field(default_factory=dict)
    orphans: list[tuple[int, int | None]] = field(default_factory=list)

    def start(self, job: Assignment) -> FakeExecution:
        execution = FakeExecution(job)
        self.started[job.job_id] = (job, execution)
        return execution

    def kill_orphan(self, job_id: int, worker_pid: int | None) -> None:
        self.orphans.append((job_id, worker_pid))


@dataclass
class Setup:
    runner: JobRunner
    executor: FakeExecutor
    sessions: sessionmaker[Session]
    workspace: Workspace
    project_id: int

    def queue(self, description: Any, project_id: int | None = None) -> int:
        with self.sessions.begin() as session:
            return queue_job(session, project_id, description).id

    def job(self, job_id: int) -> JobRow:
        with self.sessions() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            return row


BASELINE = BaselineJob("models/1/model.onnx", "m", "datasets/ds-1", "d", 1, 1, 0.1)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    sessions = make_sessions(engine)
    with sessions.begin() as session:
        model = ModelRow(name="m", path="models/1/model.onnx", precision="FP32")
        dataset = DatasetRow(
            name="d", path="datasets/ds-1", task="tensors", format="npz", samples=1
        )
        session.add_all([model, dataset])
        session.flush()
        project = ProjectRow(model_id=model.id, dataset_id=dataset.id)
        session.add(project)
        session.flush()
        project_id = project.id
    executor = FakeExecutor()
    runner = JobRunner(url, tmp_path, executor=executor)
    yield Setup(runner, executor, sessions, Workspace(tmp_path), project_id)
    runner.sessions.kw["bind"].dispose()
    engine.dispose()


def test_relayed_progress_and_a_result_brought_back_are_written_and_committed(
    setup: Setup,
) -> None:
    job_id = setup.queue(BASELINE, setup.project_id)
    setup.runner.tick()
    assignment, execution = setup.executor.started[job_id]
    assert assignment.description == BASELINE.to_json()
    assert assignment.stages == ("accuracy", "performance", "layers")
    row = setup.job(job_id)
    assert (row.state, row.runner, row.attempts) == ("running", setup.runner.id, 1)
    assert row.worker_pid is None  # nothing runs on this machine

    execution.pending = [ProgressEvent(Stage.ACCURACY, 5, 10)]
    setup.runner.tick()
    row = setup.job(job_id)
    assert row.stage == "accuracy" and row.stages[0] == {"name": "accuracy", "done": 5, "total": 10}
    execution.pending = [Waiting(True)]
    setup.runner.tick()
    assert setup.job(job_id).stage == "waiting for the machine"

    work = setup.workspace.work_dir(job_id)
    work.mkdir(parents=True)  # where the executor downloads the job's files
    execution.result = Finished({"inference": {"accuracy": None}, "layers": [{"name": "conv"}]})
    setup.runner.tick()
    row = setup.job(job_id)
    assert (row.state, row.message) == ("done", None)
    assert all(s["done"] == s["total"] >= 1 for s in row.stages)
    assert row.result == {"committed": ["inference", "layers"], "files": {}}
    with setup.sessions() as session:
        project = session.get(ProjectRow, setup.project_id)
        assert project is not None and project.inference == {"accuracy": None}
        model = session.get(ModelRow, project.model_id)
        assert model is not None and model.layers == [{"name": "conv"}]
    assert not work.exists()
    assert setup.runner.running() == []


def test_work_that_failed_elsewhere_fails_the_job_with_its_words(setup: Setup) -> None:
    job_id = setup.queue(BASELINE, setup.project_id)
    setup.runner.tick()
    setup.executor.started[job_id][1].result = Failed("the target stopped responding")
    setup.runner.tick()
    row = setup.job(job_id)
    assert (row.state, row.message) == ("failed", "the target stopped responding")


def test_a_result_that_cannot_be_committed_fails_the_job(setup: Setup) -> None:
    gone = ImportJob("uploads/upload-1/u.npz", "u.npz", "u", "ds-9", "datasets/ds-9", 2**30, 99)
    job_id = setup.queue(gone)
    setup.runner.tick()
    result = {"task": "tensors", "format": "npz", "samples": 1, "summary": {}}
    setup.executor.started[job_id][1].result = Finished(result)
    setup.runner.tick()
    row = setup.job(job_id)
    assert row.state == "failed"
    assert row.message == "the dataset being imported was deleted meanwhile"


def test_a_cancel_stops_the_execution(setup: Setup) -> None:
    job_id = setup.queue(BASELINE, setup.project_id)
    setup.runner.tick()
    with setup.sessions.begin() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        request_cancel(session, row, setup.workspace)
    setup.runner.tick()
    assert setup.executor.started[job_id][1].stopped
    row = setup.job(job_id)
    assert (row.state, row.message) == (JobState.CANCELLED, "cancelled by the user")
    assert setup.runner.running() == []


def test_recovery_asks_the_executor_to_stop_a_dead_server_s_worker(setup: Setup) -> None:
    job_id = setup.queue(BASELINE, setup.project_id)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    with setup.sessions.begin() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        row.state, row.runner, row.worker_pid = (
            "running",
            f"{socket.gethostname()}:{ended.pid}:x",
            7,
        )
        row.stage = "performance"
    setup.runner.recover()
    assert setup.executor.orphans == [(job_id, 7)]
    row = setup.job(job_id)
    assert row.state == "failed" and row.message is not None
    assert row.message.startswith("interrupted during performance")
