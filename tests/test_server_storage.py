"""The workbench's storage on SQLite and on a real PostgreSQL server: the Alembic migrations, and
the whole job path (queue, worker processes, progress, commit, cancel, crash, recovery, retry)
against each database.

Every test runs twice: on SQLite in ``tmp_path`` and on the scratch PostgreSQL server of the
``postgres_url`` fixture, whose ``public`` schema is dropped and made again around each test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import onnx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.orm import Session, sessionmaker

from calibench.server.db import (
    Base,
    DatasetRow,
    JobRow,
    ModelRow,
    ProjectRow,
    make_engine,
    now,
    session_factory,
)
from calibench.server.jobs.local import WORKER_DATABASE_ENV
from calibench.server.jobs.runner import LEASE, JobRunner
from calibench.server.jobs.states import JobState
from calibench.server.migrate import alembic_config, current_revision, upgrade
from calibench.server.settings import ServerSettings
from calibench.server.web.uploads import Upload
from calibench.server.web.workbench import Workbench
from calibench.server.workspace import Workspace
from tests.server_helpers import alive, reset_postgres

HEAD = "0005"
TABLES = {"models", "datasets", "projects", "jobs", "pair_timings"}
QUICK = 0.2
"""Seconds of performance measurement for jobs that should simply finish."""
LONG = 120.0
"""Seconds of performance measurement for a job that must still be running when it is stopped."""


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or the scratch PostgreSQL database with no tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'workbench.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    yield url
    reset_postgres(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _schema_differences(engine: sa.Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))


# migrations ---------------------------------------------------------------------------------------


def test_upgrade_reaches_head_and_running_it_again_is_harmless(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    assert not _tables(engine) & TABLES

    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert _tables(engine) >= TABLES | {"alembic_version"}

    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.add(
            DatasetRow(
                name="kept", path="datasets/ds-kept", task="classification", format="npz",
                samples=3, summary={"classes": 2},
            )
        )  # fmt: skip

    upgrade(engine)  # a restarted server runs it again on a database already at head
    assert current_revision(engine) == HEAD
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [tuple(v) for v in versions] == [(HEAD,)]
    with sessions() as session:
        kept = session.scalars(sa.select(DatasetRow)).all()
        assert [(d.name, d.samples, d.summary) for d in kept] == [("kept", 3, {"classes": 2})]


def test_upgrade_from_the_first_schema_keeps_the_jobs(engine: sa.Engine) -> None:
    """0001 → 0002 adds the jobs' lease column to a database that already holds jobs."""
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO jobs (kind, description, state, stages, cancel_requested, attempts,"
                " created_at) VALUES ('baseline', '{}', 'done', '[]', false, 1, :at)"
            ),
            {"at": datetime.now(timezone.utc)},
        )
    upgrade(engine)
    assert current_revision(engine) == HEAD
    with session_factory(engine)() as session:
        job = session.scalars(sa.select(JobRow)).one()
        assert (job.kind, job.state, job.attempts) == ("baseline", "done", 1)
        assert job.heartbeat_at is None
    assert _schema_differences(engine) == []


def test_migrated_schema_matches_the_orm(engine: sa.Engine) -> None:
    upgrade(engine)
    assert _schema_differences(engine) == []


def test_downgrade_to_base_then_upgrade_again(engine: sa.Engine) -> None:
    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert not _tables(engine) & TABLES

    upgrade(engine)
    assert current_revision(engine) == HEAD
    assert _tables(engine) >= TABLES
    assert _schema_differences(engine) == []
    with session_factory(engine).begin() as session:
        session.add(
            ModelRow(name="m", path="models/1/model.onnx", precision="FP32", info={"nodes": 1})
        )
    with session_factory(engine)() as session:
        row = session.scalars(sa.select(ModelRow)).one()
        assert (row.name, row.state, row.optimizable, row.size_bytes) == ("m", "ready", False, 0)


# the job path -------------------------------------------------------------------------------------


@dataclass
class Bench:
    url: str
    workspace: Path
    workbench: Workbench
    sessions: sessionmaker[Session]
    model_id: int
    val_id: int
    cal_id: int
    runners: list[JobRunner]

    def runner(self, max_workers: int = 1) -> JobRunner:
        runner = JobRunner(self.url, self.workspace, max_workers, poll=0.05)
        self.runners.append(runner)
        return runner

    def job(self, job_id: int) -> JobRow:
        with self.sessions() as session:
            job = session.get(JobRow, job_id)
            assert job is not None
            return job

    def model(self, model_id: int) -> ModelRow:
        with self.sessions() as session:
            model = session.get(ModelRow, model_id)
            assert model is not None
            return model

    def project(self, project_id: int) -> dict[str, Any]:
        return next(p for p in self.workbench.projects() if p["id"] == project_id)

    def drive(
        self, runner: JobRunner, until: Callable[[], bool], timeout: float, what: str
    ) -> None:
        """Tick the runner until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runner.tick()
            if until():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def finish(self, runner: JobRunner, job_id: int, timeout: float = 90) -> JobRow:
        ended = lambda: JobState(self.job(job_id).state).finished  # noqa: E731
        self.drive(runner, ended, timeout, f"job {job_id} to end")
        return self.job(job_id)

    def baseline(self, runner: JobRunner) -> dict[str, Any]:
        """A Fashion-MNIST project whose baseline job has finished."""
        project = self.workbench.create_project(self.model_id, self.val_id)
        job = self.finish(runner, project["job"]["id"])
        assert (job.state, job.message) == ("done", None)
        return self.project(project["id"])


@pytest.fixture
def bench(
    database_url: str, tmp_path: Path, fashion_cnn: Path, fashion_archives: dict[str, Path]
) -> Iterator[Bench]:
    workspace = tmp_path / "workspace"
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    settings = ServerSettings(workspace=workspace, max_upload_mb=1000, perf_seconds=QUICK)
    workbench = Workbench(sessions, settings)
    with fashion_cnn.open("rb") as f:
        model = workbench.add_model(Upload(f, "fashion_cnn.onnx"), "fashion")
    with fashion_archives["val"].open("rb") as f:
        val = workbench.add_dataset(Upload(f, "val.tar.gz"), "val")
    with fashion_archives["cal"].open("rb") as f:
        cal = workbench.add_dataset(Upload(f, "cal.zip"), "cal")
    runners: list[JobRunner] = []
    bench = Bench(
        database_url, workspace, workbench, sessions, model["id"], val["id"], cal["id"], runners
    )
    try:
        yield bench
    finally:
        for runner in runners:
            runner.stop()
            runner.sessions.kw["bind"].dispose()
        engine.dispose()


def _is_int8(path: Path) -> bool:
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    return "QuantizeLinear" in ops or any(op.startswith("QLinear") for op in ops)


def _running_calibration(bench: Bench, runner: JobRunner) -> tuple[dict[str, Any], JobRow]:
    """An INT8 project whose calibration job is running its (long) inference stage: the INT8
    model is written in the job's work folder, not yet in place."""
    parent = bench.baseline(runner)
    bench.workbench.perf_seconds = LONG
    child = bench.workbench.optimize(parent["id"], bench.cal_id)
    job_id = child["job"]["id"]
    work = Workspace(bench.workspace).work_dir(job_id)
    bench.drive(
        runner,
        lambda: bench.job(job_id).stage == "inference" and any(work.glob("*.onnx")),
        60,
        "the calibration to reach its inference stage",
    )
    job = bench.job(job_id)
    assert job.state == "running"
    assert job.worker_pid is not None and alive(job.worker_pid)
    assert bench.model(child["model"]["id"]).state == "pending"
    return child, job


def test_baseline_and_default_calibration_run_to_done(bench: Bench) -> None:
    runner = bench.runner()
    runner.recover()  # nothing to recover in a new database
    parent = bench.baseline(runner)
    assert parent["status"] == "done"
    assert parent["accuracy"]["metric"] == "top1"
    assert parent["accuracy"]["figures"]["top1"] > 70  # a trained classifier, 10 classes
    assert parent["throughput"] > 0
    assert parent["optimize"] == {"enabled": True, "reason": None}
    job = bench.job(parent["job"]["id"])
    assert job.attempts == 1 and job.runner == runner.id
    assert job.finished_at is not None and job.started_at is not None
    assert [s["name"] for s in job.stages] == ["accuracy", "performance", "layers"]
    assert all(s["done"] == s["total"] >= 1 for s in job.stages)
    assert bench.model(bench.model_id).layers  # the baseline fills the layer table

    child = bench.workbench.optimize(
        parent["id"], bench.cal_id, subset_percent=100, method="default", preset="performance"
    )
    int8_id, job_id = child["model"]["id"], child["job"]["id"]
    assert child["model"]["state"] == "pending"
    assert child["job"]["state"] == "queued"
    assert not Workspace(bench.workspace).model_file(int8_id).exists()

    job = bench.finish(runner, job_id)
    assert (job.state, job.message) == ("done", None)
    assert all(s["done"] == s["total"] >= 1 for s in job.stages)
    model = bench.model(int8_id)
    target = Workspace(bench.workspace).model_file(int8_id)
    assert (model.state, model.precision, model.parent_id) == ("ready", "INT8", bench.model_id)
    assert model.path == str(target.relative_to(bench.workspace))
    assert target.is_file() and target.stat().st_size == model.size_bytes > 0
    assert _is_int8(target)
    assert model.layers
    assert not Workspace(bench.workspace).work_dir(job_id).exists()

    project = bench.project(child["id"])
    assert project["status"] == "done"
    assert project["parent_id"] == parent["id"]
    assert project["has_comparison"]
    assert Workspace(bench.workspace).report_file(project["id"]).is_file()
    assert project["calibration"]["report"]["int8_layers"] > 0
    assert abs(project["accuracy"]["figures"]["top1"] - parent["accuracy"]["figures"]["top1"]) < 5
    assert "done" in bench.workbench.job_log(job_id)


def test_two_jobs_run_at_the_same_time(bench: Bench) -> None:
    runner = bench.runner(max_workers=2)
    parent = bench.baseline(runner)
    # A baseline that measures speed for a while, and a calibration beside it: calibrating runs
    # in parallel, measuring speed waits for the other job's measurement.
    bench.workbench.perf_seconds = 5.0
    measuring = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    bench.workbench.perf_seconds = QUICK
    # By rule: placement timing would lengthen the calibration past the other's measurement.
    by_rule = bench.workbench.optimize(parent["id"], bench.cal_id, placement="rule")
    calibrating = by_rule["job"]["id"]
    third = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    jobs = [measuring, calibrating]

    def both_working() -> bool:
        # Both workers have started and written progress: they run side by side.
        rows = [bench.job(j) for j in jobs]
        return all(r.state == "running" and r.stage is not None for r in rows)

    bench.drive(runner, both_working, 60, "two jobs running together")
    rows = [bench.job(j) for j in jobs]
    pids = [r.worker_pid for r in rows]
    assert None not in pids and pids[0] != pids[1]
    assert all(alive(pid) for pid in pids if pid is not None)
    assert sorted(runner.running()) == sorted(jobs)
    assert all(r.runner == runner.id and r.attempts == 1 for r in rows)
    assert bench.job(third).state == "queued"  # max_workers=2: the third waits its turn

    for job_id in [*jobs, third]:
        job = bench.finish(runner, job_id)
        assert (job.state, job.message) == ("done", None)
    assert "waiting for another job's measurement" in bench.workbench.job_log(calibrating)
    third_started = bench.job(third).started_at
    first_finished = [bench.job(j).finished_at for j in jobs]
    assert third_started is not None and None not in first_finished
    assert third_started >= min(f for f in first_finished if f is not None)


def test_cancelling_a_running_calibration(bench: Bench) -> None:
    runner = bench.runner()
    child, job = _running_calibration(bench, runner)
    int8_id = child["model"]["id"]

    view = bench.workbench.cancel(job.id)
    assert view["cancel_requested"] is True
    started = time.monotonic()
    ended = bench.finish(runner, job.id, timeout=30)
    assert time.monotonic() - started < 15  # the worker was stopped, not waited for
    assert ended.state == "cancelled"
    assert ended.message == "cancelled by the user"
    assert ended.finished_at is not None
    assert not alive(job.worker_pid or 0)
    model = bench.model(int8_id)
    assert model.state == "failed"
    assert not Workspace(bench.workspace).model_file(int8_id).exists()
    assert not Workspace(bench.workspace).work_dir(job.id).exists()
    project = bench.project(child["id"])
    assert project["status"] == "cancelled"
    assert project["inference"] is None and not project["has_comparison"]


def test_a_killed_worker_fails_its_job(bench: Bench) -> None:
    runner = bench.runner()
    child, job = _running_calibration(bench, runner)
    int8_id = child["model"]["id"]
    assert job.worker_pid is not None

    os.kill(job.worker_pid, signal.SIGKILL)
    ended = bench.finish(runner, job.id, timeout=30)
    assert ended.state == "failed"
    assert ended.message is not None
    assert "the worker process ended unexpectedly" in ended.message
    assert "-9" in ended.message
    assert bench.model(int8_id).state == "failed"
    assert not Workspace(bench.workspace).model_file(int8_id).exists()
    assert not Workspace(bench.workspace).work_dir(job.id).exists()
    assert runner.running() == []


def _snapshot(sessions: sessionmaker[Session], skip: dict[type, set[int]]) -> dict[str, Any]:
    """Every column of every row, except the rows named in ``skip``."""
    shot: dict[str, Any] = {}
    with sessions() as session:
        for table in (ModelRow, DatasetRow, ProjectRow, JobRow):
            for row in session.scalars(sa.select(table).order_by(table.id)):
                if row.id in skip.get(table, set()):
                    continue
                columns = {c.key: getattr(row, c.key) for c in sa.inspect(table).columns}
                shot[f"{table.__tablename__}/{row.id}"] = columns
    return shot


def _dead_pid() -> int:
    """The pid of a server that has exited (a process that ran and ended)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _left_running(bench: Bench, job_id: int, runner: str, worker_pid: int | None) -> None:
    """Make the row look like a job another server started (and then died, or not)."""
    with bench.sessions.begin() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        job.state, job.runner, job.started_at = "running", runner, now()
        job.worker_pid, job.attempts = worker_pid, 1


def _orphan_worker(bench: Bench, job_id: int) -> subprocess.Popen[bytes]:
    """A real worker process for the job, as a server started it; the server is gone, so the
    worker goes on without anyone following it (its parent here is the test, which stays)."""
    return subprocess.Popen(
        [sys.executable, "-m", "calibench.server.jobs.worker", str(job_id), str(bench.workspace),
         str(os.getpid())],
        env={**os.environ, WORKER_DATABASE_ENV: bench.url},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def test_recover_fails_what_another_runner_left_running_and_retry_finishes_it(
    bench: Bench,
) -> None:
    first = bench.runner()
    parent = bench.baseline(first)
    host = socket.gethostname()

    # Another machine's server runs a job on the same database: not ours to touch.
    elsewhere = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    _left_running(bench, elsewhere, "elsewhere.invalid:7:0123abcd", 4242)
    # A server on this host started a calibration and died; its worker goes on, half-made files
    # lie in the work folder, the row says "running".
    bench.workbench.perf_seconds = LONG
    child = bench.workbench.optimize(parent["id"], bench.cal_id)
    job_id, int8_id = child["job"]["id"], child["model"]["id"]
    worker = _orphan_worker(bench, job_id)
    try:
        _left_running(bench, job_id, f"{host}:{_dead_pid()}:0badc0de", worker.pid)
        work = Workspace(bench.workspace).work_dir(job_id)
        bench.drive(
            first,
            lambda: bench.job(job_id).stage == "inference" and any(work.glob("*.onnx")),
            60,
            "the orphaned worker to reach its inference stage",
        )
        before = _snapshot(bench.sessions, {JobRow: {job_id}, ModelRow: {int8_id}})
        assert f"jobs/{elsewhere}" in before and f"projects/{child['id']}" in before

        restarted = bench.runner()
        restarted.recover()

        job = bench.job(job_id)
        assert job.state == "failed"
        assert job.message is not None
        assert job.message.startswith("interrupted during inference"), job.message
        assert "Retry" in job.message
        assert job.finished_at is not None
        assert worker.wait(timeout=10) == -signal.SIGKILL  # the orphan is stopped
        assert bench.model(int8_id).state == "failed"
        assert not work.exists()
        assert not Workspace(bench.workspace).model_file(int8_id).exists()
        assert _snapshot(bench.sessions, {JobRow: {job_id}, ModelRow: {int8_id}}) == before
        assert bench.job(elsewhere).state == "running"

        with bench.sessions.begin() as session:  # so that the retry does not measure for long
            row = session.get(JobRow, job_id)
            assert row is not None
            inputs = {**row.description["inputs"], "seconds": QUICK}
            row.description = {**row.description, "inputs": inputs}
        view = bench.workbench.retry(job_id)
        assert (view["state"], view["message"]) == ("queued", None)
        assert bench.model(int8_id).state == "pending"
        job = bench.finish(restarted, job_id)
        assert (job.state, job.message, job.attempts) == ("done", None, 2)
        assert job.runner == restarted.id
        model = bench.model(int8_id)
        assert model.state == "ready"
        assert Workspace(bench.workspace).model_file(int8_id).is_file()
        assert _is_int8(Workspace(bench.workspace).model_file(int8_id))
        assert bench.project(child["id"])["has_comparison"]
        assert bench.job(elsewhere).state == "running"  # still not ours
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        worker.wait()
        _left_running(bench, elsewhere, "elsewhere.invalid:7:0123abcd", None)
        with bench.sessions.begin() as session:  # let the teardown find nothing running
            other = session.get(JobRow, elsewhere)
            assert other is not None
            other.state = "failed"


def test_recover_kills_no_process_but_the_jobs_worker(bench: Bench) -> None:
    """The pid a dead server recorded may belong to another process by now (after a reboot or a
    container restart pids start over): recovering must not SIGKILL whatever has that pid."""
    job_id = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    unrelated = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        dead_server = f"{socket.gethostname()}:{_dead_pid()}:0badc0de"
        _left_running(bench, job_id, dead_server, unrelated.pid)
        bench.runner().recover()
        job = bench.job(job_id)
        assert job.state == "failed"
        assert job.message is not None and job.message.startswith("interrupted")
        time.sleep(0.2)
        assert unrelated.poll() is None, (
            f"recover() killed process {unrelated.pid} (exit {unrelated.returncode}), which is "
            "not a calibench worker but had the pid recorded for the interrupted job"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            unrelated.kill()
        unrelated.wait()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_while_committing_leaves_no_file_in_place(bench: Bench) -> None:
    """The commit moves the INT8 model into place, then writes the database. A worker that dies
    between the two (SIGKILL, OOM, a cancel's SIGTERM) leaves a failed model: its file must not
    stay at the model's path. (PostgreSQL only: a row lock holds the commit half-way; SQLite
    would have to lock the whole database, the worker's progress writes with it.)"""
    runner = bench.runner()
    parent = bench.baseline(runner)
    child = bench.workbench.optimize(parent["id"], bench.cal_id)
    job_id, int8_id = child["job"]["id"], child["model"]["id"]
    target = Workspace(bench.workspace).model_file(int8_id)
    engine = make_engine(bench.url)
    try:
        with engine.connect() as holder:
            holder.execute(
                sa.select(ModelRow.id).where(ModelRow.id == int8_id).with_for_update()
            ).all()
            bench.drive(runner, target.exists, 60, "the commit to move the INT8 model in place")
            job = bench.job(job_id)
            assert job.state == "running" and job.worker_pid is not None
            os.kill(job.worker_pid, signal.SIGKILL)
            time.sleep(0.5)
            assert not alive(job.worker_pid)
            holder.rollback()
        ended = bench.finish(runner, job_id, timeout=30)
    finally:
        engine.dispose()
    assert ended.state == "failed"
    assert ended.message is not None and "ended unexpectedly" in ended.message
    assert bench.model(int8_id).state == "failed"
    assert not target.exists(), f"{target} is left in place for a failed model"


def test_a_cancel_between_reading_and_claiming_a_job_wins(bench: Bench) -> None:
    """The runner reads the queue, then claims each job; a cancel in between must stand."""
    job_id = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    runner = bench.runner()
    bench.workbench.cancel(job_id)  # lands after the runner's read, before its claim
    assert runner._claim(job_id) is False
    assert bench.job(job_id).state == "cancelled"
    second = bench.runner()
    other = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    assert runner._claim(other) is True
    assert second._claim(other) is False  # two servers never both take a job
    job = bench.job(other)
    assert (job.state, job.runner, job.attempts) == ("running", runner.id, 1)
    with bench.sessions.begin() as session:  # let the teardown find nothing running
        row = session.get(JobRow, other)
        assert row is not None
        row.state = "failed"


def test_a_lease_not_renewed_means_the_server_is_gone(bench: Bench) -> None:
    """A server on another host (or in a recreated container) is known only by its lease."""
    fresh = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    stale = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    _left_running(bench, fresh, "elsewhere.invalid:7:0123abcd", None)
    _left_running(bench, stale, "elsewhere.invalid:8:4567cdef", None)
    with bench.sessions.begin() as session:
        row = session.get(JobRow, stale)
        assert row is not None
        row.heartbeat_at = now() - timedelta(seconds=LEASE + 5)
    bench.runner().recover()
    assert bench.job(fresh).state == "running"
    job = bench.job(stale)
    assert job.state == "failed"
    assert job.message is not None and job.message.startswith("interrupted")
    with bench.sessions.begin() as session:
        row = session.get(JobRow, fresh)
        assert row is not None
        row.state = "failed"


def test_a_reused_pid_only_delays_recovery_until_the_lease_ends(bench: Bench) -> None:
    """On this host the dead server's pid may run something else by now: its lease decides."""
    job_id = bench.workbench.create_project(bench.model_id, bench.val_id)["job"]["id"]
    reused = f"{socket.gethostname()}:{os.getpid()}:feedf00d"  # a live process, not that server
    _left_running(bench, job_id, reused, None)
    bench.runner().recover()
    assert bench.job(job_id).state == "running"  # its lease is fresh: maybe it still runs
    with bench.sessions.begin() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        row.heartbeat_at = now() - timedelta(seconds=LEASE + 5)
    bench.runner().recover()
    assert bench.job(job_id).state == "failed"
