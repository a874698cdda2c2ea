"""The workspace's layout, in one place: every file and folder the workbench keeps there.

The database stores paths relative to the workspace (``models/3/model.onnx``), and job
descriptions name their inputs that way, so a workspace can move, and a job can run where the
workspace sits elsewhere (a remote target unpacks its inputs under its own root)."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

FOLDERS = ("models", "datasets", "projects", "jobs", "uploads")
UPLOAD_PREFIX = "upload-"
DATASET_PREFIX = "ds-"
"""What a workbench makes at its start."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    def create(self) -> None:
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def path(self, relative: str) -> Path:
        """A path a row or a job description names (relative to the workspace)."""
        return self.root / relative

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    # the server's own files

    @property
    def database_file(self) -> Path:
        """The default database: SQLite, in the workspace."""
        return self.root / "workbench.db"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_file}"

    @property
    def token_file(self) -> Path:
        return self.root / "server-token"

    @property
    def measure_lock(self) -> Path:
        """Held by the one job that measures speed on this machine at a time."""
        return self.root / "measure.lock"

    # models and projects

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model_dir(self, model_id: int) -> Path:
        return self.models / str(model_id)

    def model_file(self, model_id: int) -> Path:
        return self.model_dir(model_id) / "model.onnx"

    @property
    def projects(self) -> Path:
        return self.root / "projects"

    def project_dir(self, project_id: int) -> Path:
        return self.projects / str(project_id)

    def report_file(self, project_id: int) -> Path:
        """An INT8 project's comparison with its parent, as the HTML report."""
        return self.project_dir(project_id) / "compare.html"

    # datasets and uploads

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def dataset_path(self, folder: str) -> str:
        """A dataset folder as its row names it (relative to the workspace)."""
        return f"datasets/{folder}"

    def new_dataset_folder(self) -> str:
        """A fresh name for an imported dataset's folder (``ds-`` and 12 hex digits)."""
        return f"{DATASET_PREFIX}{uuid.uuid4().hex[:12]}"

    def dataset_staging(self, folder: str) -> list[Path]:
        """The hidden folders an import of ``folder`` builds it in (``.folder.….partial``)."""
        return sorted(self.datasets.glob(f".{folder}.*.partial"))

    @property
    def uploads(self) -> Path:
        """Uploads being received, and large ones waiting for their import job."""
        return self.root / "uploads"

    def new_upload_folder(self) -> Path:
        """A fresh, private folder to receive one upload in."""
        self.uploads.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=self.uploads))

    def leftovers(self) -> list[Path]:
        """What a killed server can leave behind: uploads being received, datasets being
        imported (their staging folders)."""
        return [
            *sorted(self.uploads.glob(f"{UPLOAD_PREFIX}*")),
            *sorted(self.datasets.glob(f".{DATASET_PREFIX}*.partial")),
        ]

    def upload_folder(self, upload: str) -> Path | None:
        """The folder of an upload a job names, if it is one of the workspace's uploads."""
        folder = self.path(upload).parent
        return folder if folder.parent == self.uploads else None

    # jobs

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(job_id)

    def log_path(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "job.log"

    def work_dir(self, job_id: int) -> Path:
        """Where a running job writes its files; its commit moves them into place."""
        return self.job_dir(job_id) / "work"
