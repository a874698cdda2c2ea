"""What every domain's service stands on: the database sessions, the workspace and the limits
the server was started with. :class:`~calibench.server.web.workbench.Workbench` joins the
domains' services over one of these."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from calibench.server.jobs.dataset_import import import_memory_limit
from calibench.server.jobs.workspace import Workspace
from calibench.server.paths import shown
from calibench.server.web.uploads import Upload, receive

IMPORT_JOB_BYTES = 64_000_000
"""Default threshold above which a dataset upload (its bytes, or what its headers say it unpacks
to) is imported by a job rather than inside the request."""


class WorkbenchBase:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        workspace: Path,
        max_upload_bytes: int,
        perf_seconds: float = 3.0,
        import_job_bytes: int = IMPORT_JOB_BYTES,
        import_memory_bytes: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.workspace = workspace
        self.paths = Workspace(workspace)
        """Where each thing of the workspace lies."""
        self.max_upload_bytes = max_upload_bytes
        self.perf_seconds = perf_seconds
        """How long each performance measurement of a job lasts."""
        self.import_job_bytes = import_job_bytes
        """Uploads above this (or unpacking to more) are imported by a job."""
        self.import_memory_bytes = import_memory_bytes or import_memory_limit()
        """The most private memory an import job's worker may take."""
        self.paths.create()

    def receive(self, upload: Upload, suffixes: tuple[str, ...], what: str) -> Path:
        """An upload copied into the workspace's uploads folder (see :func:`receive`)."""
        return receive(upload, suffixes, what, self.paths.uploads, self.max_upload_bytes)

    def shown(self, text: str, upload: Path, called: str, dataset: str | None = None) -> str:
        """An error's words for the person who uploaded: the upload ``called`` so, no server
        path."""
        names = {str(upload): called, str(upload.parent): "the upload's folder"}
        return shown(text, self.workspace, names, dataset)
