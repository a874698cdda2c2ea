"""Datasets: import an upload (a small one in the request, a large one by an ``import`` job),
describe, delete."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from calibench.data.archive import is_archive
from calibench.data.importer import KINDS as DATASET_KINDS
from calibench.data.importer import import_dataset
from calibench.errors import CalibenchError, WorkbenchError
from calibench.server.db import DatasetRow, JobRow, ProjectRow
from calibench.server.jobs.dataset_import import import_summary
from calibench.server.jobs.kinds import ImportJob
from calibench.server.jobs.lifecycle import queue_job
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.datasets.schemas import DatasetDetail, DatasetView, ImportingDatasetView
from calibench.server.web.disk import disk_full, disk_full_refusal
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.rows import (
    get_row,
    referrers,
    refuse_while_a_job_uses,
    refuse_while_used,
)
from calibench.server.web.uploads import DATASET_SUFFIXES, Upload, check_name, display_name


def get_dataset(session: Session, dataset_id: int) -> DatasetRow:
    return get_row(session, DatasetRow, dataset_id, "dataset")


def ready_dataset(session: Session, dataset_id: int) -> DatasetRow:
    """A dataset jobs can read: refused in words (409) while it is imported or when its import
    failed."""
    dataset = get_dataset(session, dataset_id)
    refusal = not_ready(dataset)
    if refusal is not None:
        raise WorkbenchError(refusal, 409)
    return dataset


def not_ready(dataset: DatasetRow) -> str | None:
    """Why jobs cannot use this dataset yet (None: they can)."""
    job = (dataset.summary or {}).get("job")
    if dataset.state == "importing":
        return (
            f"dataset {dataset.name!r} is still being imported (job {job}); use it once that "
            "job is done"
        )
    if dataset.state == "failed":
        error = (dataset.summary or {}).get("error") or "no reason was recorded"
        return (
            f"dataset {dataset.name!r} was not imported (job {job}: {error}); delete it and "
            "import the file again"
        )
    return None


class DatasetService(WorkbenchBase):
    def add_dataset(
        self, upload: Upload, name: str | None = None, kind: str | None = None
    ) -> DatasetView:
        """Import a dataset upload. A small one is unpacked and checked here and its dataset is
        returned ready; a large one (see :meth:`imports_as_job`) is handed to an ``import`` job:
        its dataset is returned ``importing``, with the job."""
        if kind and kind not in DATASET_KINDS:
            raise WorkbenchError(
                f"unknown dataset type {kind[:40]!r}; choose one of {', '.join(DATASET_KINDS)}"
            )
        path = self.receive(upload, DATASET_SUFFIXES, "the dataset")
        handed_over = False
        try:
            chosen = check_name(name or display_name(upload.filename, "dataset"), "dataset")
            self._refuse_taken(chosen)
            if not (is_archive(path) or path.suffix == ".npz"):
                raise WorkbenchError("the dataset must be an archive or an .npz file", 415)
            folder = self.paths.new_dataset_folder()
            if self.imports_as_job(path):
                view = self._queue_import(path, upload.filename, chosen, folder, kind)
                handed_over = True
                return view
            try:
                result = import_dataset(path, self.paths.datasets, folder, kind or None)
            except CalibenchError as error:
                if disk_full(error):
                    raise disk_full_refusal(self.workspace) from error
                raise WorkbenchError(
                    f"{upload.filename[:80]!r} could not be imported: "
                    + self.shown(str(error), path, "the upload", folder)
                ) from error
            summary = import_summary(result, self.workspace, path, upload.filename, chosen, folder)
            try:
                with self.sessions.begin() as session:
                    row = DatasetRow(
                        name=chosen,
                        path=self.paths.dataset_path(folder),
                        task=result.task.value,
                        format=result.format,
                        samples=result.samples,
                        summary=summary,
                        state="ready",
                    )
                    session.add(row)
                    session.flush()
                    return DatasetView.of(row)
            except IntegrityError as error:  # another upload took the name meanwhile
                shutil.rmtree(result.path, ignore_errors=True)
                raise WorkbenchError(f"a dataset named {chosen!r} exists already", 409) from error
        finally:
            if not handed_over:
                shutil.rmtree(path.parent, ignore_errors=True)

    def _refuse_taken(self, name: str) -> None:
        with self.sessions() as session:
            taken = session.scalars(select(DatasetRow).where(DatasetRow.name == name)).first()
        if taken is None:
            return
        why = {
            "importing": " (its import is still running)",
            "failed": " (its import failed; delete it to reuse the name)",
        }.get(taken.state, "")
        raise WorkbenchError(f"a dataset named {name!r} exists already{why}", 409)

    def imports_as_job(self, upload: Path) -> bool:
        """Whether an upload is imported by a job: when it is larger than ``import_job_bytes``,
        or its archive's headers say it unpacks to more (zip and .npz: the members' declared
        sizes; gzip: its trailer's size). Those take long, and unpacking or loading them must
        not hold the request nor the server's memory; small ones are ready at once."""
        size = upload.stat().st_size
        return max(size, _declared_bytes(upload)) > self.import_job_bytes

    def _queue_import(
        self, upload: Path, filename: str, name: str, folder: str, kind: str | None
    ) -> ImportingDatasetView:
        try:
            with self.sessions.begin() as session:
                row = DatasetRow(
                    name=name,
                    path=self.paths.dataset_path(folder),
                    task="",
                    format="",
                    samples=0,
                    summary={"source": filename[:200], "name": name},
                    state="importing",
                )
                session.add(row)
                session.flush()
                description = ImportJob(
                    upload=self.paths.relative(upload),
                    filename=filename[:200],
                    name=name,
                    kind=kind or None,
                    folder=folder,
                    dataset=row.path,
                    memory_limit=self.import_memory_bytes,
                    dataset_id=row.id,
                )
                job = queue_job(session, None, description)
                row.summary = {**row.summary, "job": job.id}
                return ImportingDatasetView.importing(row, JobView.of(job))
        except IntegrityError as error:  # another upload took the name meanwhile
            raise WorkbenchError(f"a dataset named {name!r} exists already", 409) from error

    def datasets(self) -> list[DatasetView]:
        with self.sessions() as session:
            rows = session.scalars(select(DatasetRow).order_by(DatasetRow.id))
            return [DatasetView.of(d) for d in rows]

    def dataset_view(self, dataset_id: int) -> DatasetView:
        with self.sessions() as session:
            return DatasetView.of(get_dataset(session, dataset_id))

    def dataset_detail(self, dataset_id: int) -> DatasetDetail:
        with self.sessions() as session:
            view = DatasetView.of(get_dataset(session, dataset_id))
            job = session.get(JobRow, view.job_id) if isinstance(view.job_id, int) else None
            return DatasetDetail(dataset=view, job=JobView.of(job) if job is not None else None)

    def delete_dataset(self, dataset_id: int) -> None:
        with self.sessions.begin() as session:
            dataset = get_dataset(session, dataset_id)
            refuse_while_a_job_uses(session, dataset.path, f"dataset {dataset.name!r}")
            refuse_while_used(
                referrers(session, ProjectRow.dataset_id, dataset_id),
                f"dataset {dataset.name!r} is used by",
                "project",
            )
            calibrated = _calibrated_with(session, dataset_id)
            if calibrated:
                raise WorkbenchError(
                    f"dataset {dataset.name!r} is the calibration dataset of project "
                    f"{', '.join(map(str, calibrated))} (Retry calibrates with it again): "
                    "delete that project first",
                    409,
                )
            folder = self.paths.path(dataset.path)
            session.delete(dataset)
        shutil.rmtree(folder, ignore_errors=True)


def _calibrated_with(session: Session, dataset_id: int) -> list[int]:
    """The INT8 projects whose calibration dataset this is (a Retry calibrates with it again)."""
    rows = session.scalars(select(ProjectRow).where(ProjectRow.calibration.is_not(None)))
    return [
        p.id for p in rows if ((p.calibration or {}).get("dataset") or {}).get("id") == dataset_id
    ]


def _declared_bytes(path: Path) -> int:
    """What an upload says it unpacks to, from its headers alone (0 when it says nothing or
    cannot be read: the import itself then explains what is wrong with it)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return sum(max(0, info.file_size) for info in archive.infolist())
        lower = path.name.lower()
        if lower.endswith((".tar.gz", ".tgz")):
            with path.open("rb") as handle:  # gzip's trailer: the size modulo 2**32, a hint
                handle.seek(-4, os.SEEK_END)
                return int.from_bytes(handle.read(4), "little")
        if lower.endswith(".tar") and tarfile.is_tarfile(path):
            return path.stat().st_size
    except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError):
        return 0
    return 0
