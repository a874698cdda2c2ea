"""What a running job's body may use: its workspace and work folder, its log, progress by
stage, the machine's one speed-measurement slot, and words for its errors."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from calibench.errors import CalibenchError
from calibench.server.jobs.progress import ProgressSink
from calibench.server.jobs.states import ProgressEvent, Stage
from calibench.server.paths import shown
from calibench.server.workspace import Workspace


class JobContext:
    """A job's body sees only this and its description; it writes its files in ``work``."""

    def __init__(
        self, job_id: int, workspace: Workspace, sink: ProgressSink, logger: logging.Logger
    ) -> None:
        self.job_id = job_id
        self.workspace = workspace
        self.work = workspace.work_dir(job_id)
        self.log = logger
        self._sink = sink
        self._stage: Stage | None = None

    def progress(self, stage: Stage, done: int, total: int, detail: str = "") -> None:
        self.report(ProgressEvent(stage, int(done), int(total), detail))

    def report(self, event: ProgressEvent) -> None:
        if event.stage != self._stage:
            self.log.info("stage: %s", event.stage)
        self._stage = event.stage
        self._sink.report(event)

    def report_text(self, text: str, done: int, total: int) -> None:
        """A library's progress callback: ``(stage, done, total)``, the stage as words."""
        self.report(ProgressEvent.parse(text, done, total))

    def waiting(self, on: bool) -> None:
        """Show that the job waits for the machine (another job is timing its model)."""
        self._sink.waiting(on)


@contextmanager
def measuring(ctx: JobContext) -> Iterator[None]:
    """One job at a time measures speed on this machine: jobs running side by side would skew
    each other's latency and throughput. Calibration itself runs in parallel."""
    with ctx.workspace.measure_lock.open("a") as handle:
        if not _try_lock(handle):
            ctx.log.info("waiting for another job's measurement to finish")
            ctx.waiting(True)
            fcntl.flock(handle, fcntl.LOCK_EX)
            ctx.waiting(False)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def named(workspace: Workspace, names: dict[Path, str | None]) -> Iterator[None]:
    """Errors name the models and datasets as the person named them, not by their files in the
    workspace; any other file there by its path relative to the workspace."""
    try:
        yield
    except CalibenchError as error:
        message = shown(
            str(error),
            workspace.root,
            {str(path): repr(name) for path, name in names.items() if name},
        )
        if message == str(error):
            raise
        raise type(error)(message) from error
