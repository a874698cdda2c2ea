"""The job kinds: for each, its description, the body that runs it (anywhere), and the steps
that apply its result to the database (in the server's transaction that ends it).

A plain constant: importing it registers nothing, and everything a kind is sits on one line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from calibench.server.db import JobRow
from calibench.server.jobs.baseline import abandon_baseline, commit_baseline, run_baseline
from calibench.server.jobs.calibration import (
    abandon_calibration,
    commit_calibration,
    retry_calibration,
    run_calibration,
)
from calibench.server.jobs.context import JobContext
from calibench.server.jobs.dataset_import import abandon_import, commit_import, run_import
from calibench.server.jobs.kinds import (
    BaselineJob,
    CalibrationJob,
    ImportJob,
    JobDescription,
    JobDescriptionError,
    SideBySideJob,
)
from calibench.server.jobs.side_by_side import (
    abandon_side_by_side,
    commit_side_by_side,
    run_side_by_side,
)
from calibench.server.workspace import Workspace

D = TypeVar("D", bound=JobDescription)


def _nothing_to_undo(session: Session, job: JobRow) -> None:
    return None


@dataclass(frozen=True)
class JobKind(Generic[D]):
    description: type[D]
    """What the job is asked to do; its ``stages()`` are the bars the job starts with."""
    run: Callable[[JobContext, D], dict[str, Any]]
    """Runs the job anywhere: only its description, the workspace's inputs, a work folder."""
    commit: Callable[[Session, JobRow, dict[str, Any], Workspace], None]
    """Applies a finished job's result to the database (in the transaction that marks it done)."""
    abandon: Callable[[Session, JobRow, Workspace], None]
    """Called when the job ends without a result (failed, cancelled, interrupted)."""
    retry: Callable[[Session, JobRow], None] = _nothing_to_undo
    """Called when a failed or cancelled job is queued again."""


KINDS: Mapping[str, JobKind[Any]] = MappingProxyType(
    {
        BaselineJob.KIND: JobKind(BaselineJob, run_baseline, commit_baseline, abandon_baseline),
        CalibrationJob.KIND: JobKind(
            CalibrationJob,
            run_calibration,
            commit_calibration,
            abandon_calibration,
            retry_calibration,
        ),
        ImportJob.KIND: JobKind(ImportJob, run_import, commit_import, abandon_import),
        SideBySideJob.KIND: JobKind(
            SideBySideJob, run_side_by_side, commit_side_by_side, abandon_side_by_side
        ),
    }
)


def kind_named(kind: str) -> JobKind[Any]:
    try:
        return KINDS[kind]
    except KeyError:
        raise JobDescriptionError(
            f"unknown job kind {kind!r}: this calibench runs {', '.join(KINDS)}"
        ) from None


def describe(kind: str, inputs: dict[str, Any]) -> JobDescription:
    """The description of a ``kind`` job with these inputs."""
    return kind_named(kind).description.from_inputs(inputs)


def read_description(kind: str, stored: dict[str, Any]) -> JobDescription:
    """A job's description, from its row's ``kind`` and ``description``."""
    return kind_named(kind).description.from_json(stored)
