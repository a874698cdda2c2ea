"""The import job: a large dataset upload unpacked and checked into ``datasets/<folder>`` (built
in a hidden staging folder beside it, renamed at the end), in a worker whose memory is capped;
its commit marks the dataset ready. Small uploads are imported inside the request with the same
summary (:func:`import_summary`)."""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from calibench.errors import CalibenchError, DatasetError
from calibench.server.db import DatasetRow, JobRow
from calibench.server.jobs.context import JobContext
from calibench.server.jobs.kinds import ImportJob, JobDescriptionError
from calibench.server.jobs.states import Stage
from calibench.server.paths import shown, shown_in
from calibench.server.workspace import Workspace

if TYPE_CHECKING:
    from calibench.data.import_result import ImportResult


def import_memory_limit() -> int:
    """The most memory (private data: heap and anonymous mappings) an import job's worker may
    take: a quarter of the machine's memory, at least 1 GiB. An archive or .npz that needs more
    fails in words in its worker; the server's own memory is never at stake."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 1024**3
    return max(1024**3, total // 4)


def upload_names(upload: Path, filename: str) -> dict[str, str]:
    """How messages name an upload: by the name the browser gave, never by its server path."""
    return {str(upload): filename[:200], str(upload.parent): "the upload's folder"}


def import_summary(
    result: ImportResult, workspace: Path, upload: Path, filename: str, name: str, folder: str
) -> dict[str, Any]:
    """A dataset's summary as the pages show it: no server path, its uploaded file's name."""
    summary = result.summary()
    summary.pop("path", None)
    summary = shown_in(summary, workspace, upload_names(upload, filename), folder)
    summary["source"] = filename[:200]
    summary["name"] = name
    return dict(summary)


def run_import(ctx: JobContext, job: ImportJob) -> dict[str, Any]:
    from calibench.data.importer import import_dataset

    ws = ctx.workspace
    upload = ws.path(job.upload)
    filename = str(job.filename or "the upload")
    folder = str(job.folder)
    limit = int(job.memory_limit or import_memory_limit())
    _limit_memory(limit)
    ctx.log.info("importing %r (%d bytes) as %r", filename, upload.stat().st_size, job.name)
    ctx.progress(Stage.UNPACKING, 0, 1)

    def on_checks(done: int, total: int) -> None:
        ctx.progress(Stage.CHECKING_SAMPLES, done, total)

    try:
        result = import_dataset(upload, ws.datasets, folder, job.kind or None, progress=on_checks)
    except (CalibenchError, MemoryError) as error:
        if _out_of_memory(error):
            raise DatasetError(
                f"{filename[:80]!r} could not be imported: it needs more memory than an import "
                f"may use ({limit // 1_000_000} MB, a quarter of this machine's memory); split "
                "it into smaller files, or store its arrays uncompressed (np.savez) so that they "
                "are mapped rather than loaded"
            ) from error
        names = upload_names(upload, filename)
        raise DatasetError(
            f"{filename[:80]!r} could not be imported: {shown(str(error), ws.root, names, folder)}"
        ) from error
    ctx.progress(Stage.SUMMARY, 0, 1)
    summary = import_summary(result, ws.root, upload, filename, str(job.name), folder)
    ctx.log.info(
        "imported %d samples (%s, %s); %d problem(s)",
        result.samples,
        result.task.value,
        result.format,
        int((summary.get("problems") or {}).get("count") or 0),
    )
    ctx.progress(Stage.SUMMARY, 1, 1)
    return {
        "task": result.task.value,
        "format": result.format,
        "samples": result.samples,
        "summary": summary,
    }


def _out_of_memory(error: BaseException | None) -> bool:
    """Whether the error is, or was raised from, a failed allocation."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _limit_memory(limit: int) -> None:
    """Cap the worker's private memory (RLIMIT_DATA: heap and anonymous mappings; a memory-
    mapped file does not count), so an allocation beyond it is a MemoryError, not the machine's
    memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _description(job: JobRow) -> ImportJob | None:
    """The job's description; None when it cannot be read (ending the job must not fail on it:
    nothing it names is then touched)."""
    try:
        return ImportJob.from_json(job.description or {})
    except (JobDescriptionError, TypeError):
        return None


def _import_row(session: Session, job: JobRow) -> DatasetRow | None:
    described = _description(job)
    if described is None or not isinstance(described.dataset_id, int):
        return None
    return session.get(DatasetRow, described.dataset_id)


def _remove_upload(ws: Workspace, job: JobRow) -> None:
    described = _description(job)
    folder = ws.upload_folder(described.upload) if described and described.upload else None
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def commit_import(session: Session, job: JobRow, result: dict[str, Any], ws: Workspace) -> None:
    dataset = _import_row(session, job)
    if dataset is None:
        raise DatasetError("the dataset being imported was deleted meanwhile")
    if not ws.path(dataset.path).is_dir():
        raise DatasetError("the imported dataset's folder is missing from the workspace")
    dataset.task, dataset.format = result["task"], result["format"]
    dataset.samples, dataset.state = int(result["samples"]), "ready"
    dataset.summary = {**result["summary"], "job": job.id}
    _remove_upload(ws, job)


def abandon_import(session: Session, job: JobRow, ws: Workspace) -> None:
    """The import ended without a result: its dataset is failed, with the job's words; what it
    had unpacked (the staging folder, or a folder a commit that did not finish had renamed into
    place) and its upload are removed."""
    described = _description(job)
    if described is not None and described.folder:
        for staging in ws.dataset_staging(described.folder):
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(ws.datasets / described.folder, ignore_errors=True)
    _remove_upload(ws, job)
    dataset = _import_row(session, job)
    if dataset is not None and dataset.state != "ready":
        dataset.state = "failed"
        dataset.summary = {**(dataset.summary or {}), "error": job.message, "job": job.id}
