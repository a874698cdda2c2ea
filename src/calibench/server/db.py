"""The workbench's tables. The schema itself is created and upgraded by the Alembic migrations in
``migrations/``; these classes must match them (a test compares the two)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from calibench.errors import ConfigError


def now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}
"""SQLite would hand a deleted row's id to the next row (a stale link would open another
dataset); AUTOINCREMENT never does. PostgreSQL's sequences never reuse ids anyway."""


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500))
    """Relative to the workspace; the file exists once ``state`` is ``ready``."""
    state: Mapped[str] = mapped_column(String(20), default="ready")
    """ready, pending (being produced by a job), failed."""
    precision: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), nullable=True)
    optimizable: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why INT8 calibration refuses this model (None when it does not)."""
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Inputs, outputs, opset, layer counts."""
    layers: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(String(500))
    task: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(40))
    samples: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    state: Mapped[str] = mapped_column(String(20), default="ready", server_default="ready")
    """ready; importing (a large upload being imported by its job, ``summary["job"]``); failed
    (that job failed or was cancelled: ``summary["error"]`` says why)."""

    @property
    def annotated(self) -> bool:
        """Whether accuracy can be measured on it (tensors: when they came with labels)."""
        if self.task == "tensors":
            return bool((self.summary or {}).get("classes"))
        return self.task in ("classification", "detection")


class ProjectRow(Base):
    __tablename__ = "projects"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    target: Mapped[str] = mapped_column(String(100), default="this machine")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Inference settings (batch, streams) and preprocessing."""
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """For an INT8 project: what was asked (config) and the calibration report."""
    inference: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    description: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What the job does, all of it: ``{"version", "inputs": {...}}``, the kind's description
    (:mod:`calibench.server.jobs.kinds`)."""
    state: Mapped[str] = mapped_column(String(20), index=True)
    """A :class:`~calibench.server.jobs.states.JobState`'s word (the jobs package reads it; the
    tables know nothing of what a job is)."""
    stage: Mapped[str | None] = mapped_column(String(60), nullable=True)
    stages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``[{"name", "done", "total"}]`` in the order the job goes through them."""
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    runner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    """The server instance (host:pid:uuid) whose worker runs the job."""
    worker_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When the runner last renewed its lease on this running job."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PairTimingRow(Base):
    """Two projects' models timed side by side by a ``side-by-side timing`` job (Compare): the
    only figures of theirs that may be divided into a speed-up. It goes with either project."""

    __tablename__ = "pair_timings"
    __table_args__ = NEVER_REUSED

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    a_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    """The reference project."""
    b_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(Integer)
    """The job that timed them (its log says how)."""
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``{"a": perf, "b": perf}``: each a :class:`~calibench.workflow.performance.PerfResult`'s
    dict, stamped with one measurement."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


def normalise_url(url: str) -> str:
    """``postgresql://`` uses psycopg 3; anything but SQLite and PostgreSQL is refused."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite://", "postgresql+psycopg://")):
        return url
    raise ConfigError(
        f"unsupported database URL {url.split(':', 1)[0]!r}: use sqlite:///path or "
        "postgresql://user@host/dbname"
    )


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)
