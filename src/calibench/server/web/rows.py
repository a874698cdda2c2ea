"""Finding rows by id, and the checks every delete makes: nothing that a live job reads, and
nothing another row still points at."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.errors import WorkbenchError
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.jobs.states import LIVE

MAX_ID = 2**31 - 1
"""The largest id a row can have (PostgreSQL's INTEGER); a larger one names no row."""

RowT = TypeVar("RowT", ModelRow, DatasetRow, ProjectRow, JobRow)


def get_row(session: Session, table: type[RowT], row_id: int, what: str) -> RowT:
    row = session.get(table, row_id) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise WorkbenchError(f"there is no {what} {row_id}", 404)
    return row


def _names_path(value: Any, path: str) -> bool:
    """Whether a job description names ``path`` (relative to the workspace) or a file in it."""
    if isinstance(value, str):
        return value == path or value.startswith(path.rstrip("/") + "/")
    if isinstance(value, dict):
        return any(_names_path(v, path) for v in value.values())
    if isinstance(value, list):
        return any(_names_path(v, path) for v in value)
    return False


def refuse_while_a_job_uses(session: Session, path: str, what: str) -> None:
    """A queued or running job reads its inputs by path: they stay until it has ended."""
    if not path:
        return
    jobs = session.scalars(select(JobRow).where(JobRow.state.in_(LIVE)).order_by(JobRow.id))
    for job in jobs:
        if _names_path(job.description, path):
            raise WorkbenchError(
                f"{what} is used by job {job.id} ({job.state}): wait for it to end or cancel "
                "it first",
                409,
            )


def referrers(session: Session, column: Any, row_id: int) -> list[int]:
    """The ids of the rows whose ``column`` points at ``row_id``."""
    return list(session.scalars(select(column.class_.id).where(column == row_id)))


def refuse_while_used(users: list[int], what: str, noun: str) -> None:
    """Refuse (409) while ``users`` (ids of ``noun``) use a thing: "``what`` project 4: delete
    it first", "``what`` projects 4, 5: delete them first"."""
    if users:
        named = f"{noun}{'s' if len(users) > 1 else ''} {', '.join(map(str, users))}"
        them = "them" if len(users) > 1 else "it"
        raise WorkbenchError(f"{what} {named}: delete {them} first", 409)
