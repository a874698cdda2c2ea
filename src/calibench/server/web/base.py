"""What every domain's service stands on: the database sessions, the workspace and the limits
the server was started with. :class:`~calibench.server.web.workbench.Workbench` joins the
domains' services over one of these."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from calibench.server.jobs.dataset_import import import_memory_limit
from calibench.server.paths import shown
from calibench.server.settings import ServerSettings
from calibench.server.web.uploads import Upload, receive
from calibench.server.workspace import Workspace


class WorkbenchBase:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: ServerSettings,
        import_memory_bytes: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.workspace = settings.workspace
        self.paths = Workspace(settings.workspace)
        """Where each thing of the workspace lies."""
        self.max_upload_bytes = settings.max_upload_bytes
        self.perf_seconds = settings.perf_seconds
        """How long each performance measurement of a job lasts."""
        self.import_job_bytes = settings.import_job_bytes
        """Uploads above this (or unpacking to more) are imported by a job."""
        self.import_memory_bytes = import_memory_bytes or import_memory_limit()
        """The most private memory an import job's worker may take."""
        self.paths.create()

    def receive(self, upload: Upload, suffixes: tuple[str, ...], what: str) -> Path:
        """An upload copied into the workspace's uploads folder (see :func:`receive`)."""
        return receive(upload, suffixes, what, self.paths, self.max_upload_bytes)

    def shown(self, text: str, upload: Path, called: str, dataset: str | None = None) -> str:
        """An error's words for the person who uploaded: the upload ``called`` so, no server
        path."""
        names = {str(upload): called, str(upload.parent): "the upload's folder"}
        return shown(text, self.workspace, names, dataset)
