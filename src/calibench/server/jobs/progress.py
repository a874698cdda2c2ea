"""A job's progress as the pages show it: one bar per stage, written to the job's row.

Events come from the job's body (a local worker writes them itself) or from an executor that
relays a remote worker's events; either way a :class:`StageBoard` turns them into the row's
``stages`` list, ``[{"name", "done", "total"}]``, and ``stage``, the stage the job is in."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from calibench.server.db import JobRow
from calibench.server.jobs.states import JobState, ProgressEvent, Stage

PROGRESS_INTERVAL = 0.25
"""Seconds between two progress writes of one stage (the first and last are always written)."""


class ProgressSink(Protocol):
    """Where a running job's progress goes."""

    def report(self, event: ProgressEvent) -> None: ...

    def waiting(self, on: bool) -> None:
        """The job starts (or stops) waiting for the machine."""


class StageBoard:
    """The bars of one job, in the order it goes through its stages."""

    def __init__(self, stages: Iterable[str]) -> None:
        self.entries: list[dict[str, Any]] = [{"name": s, "done": 0, "total": 0} for s in stages]
        self.stage: str | None = None
        """The stage last reported."""

    @classmethod
    def from_db(cls, stages: list[dict[str, Any]]) -> StageBoard:
        return cls(s["name"] for s in stages)

    def apply(self, event: ProgressEvent) -> bool:
        """Record the event; whether it starts another stage."""
        name = event.stage.value
        entry = next((s for s in self.entries if s["name"] == name), None)
        if entry is None:
            entry = {"name": name, "done": 0, "total": 0}
            self.entries.append(entry)
        # Stages before this one are finished, whatever they last reported.
        for earlier in self.entries[: self.entries.index(entry)]:
            if earlier["total"] == 0 or earlier["done"] < earlier["total"]:
                earlier["done"] = earlier["total"] = max(1, int(earlier["total"]))
        entry["done"], entry["total"] = event.done, event.total
        changed = name != self.stage
        self.stage = name
        return changed

    def to_db(self) -> list[dict[str, Any]]:
        return [dict(s) for s in self.entries]

    def completed(self) -> list[dict[str, Any]]:
        """Every bar full: the job is done."""
        return [
            {**s, "done": max(1, s["total"]), "total": max(1, s["total"])} for s in self.entries
        ]


class DatabaseProgress:
    """A :class:`ProgressSink` that writes to the job's row while the job runs (at most every
    ``PROGRESS_INTERVAL`` seconds per stage, and always at a stage's start and end)."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int, board: StageBoard) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.board = board
        self._last = 0.0
        self._waiting = False

    def report(self, event: ProgressEvent) -> None:
        changed = self.board.apply(event)
        moment = time.monotonic()
        if changed or event.done >= event.total or moment - self._last >= PROGRESS_INTERVAL:
            self._last = moment
            self._write()

    def waiting(self, on: bool) -> None:
        self._waiting = on
        self._write()

    def _write(self) -> None:
        with self.sessions.begin() as session:
            job = session.get(JobRow, self.job_id)
            if job is not None and job.state == JobState.RUNNING:
                job.stage = Stage.WAITING.value if self._waiting else self.board.stage
                job.stages = self.board.to_db()
