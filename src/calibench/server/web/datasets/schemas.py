"""A dataset as the pages and the API show it, and the import form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from calibench.data.import_result import FORMAT_NAMES
from calibench.server.db import DatasetRow
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.schemas import View, iso


class DatasetView(View):
    id: int
    name: str
    task: str
    annotated: bool
    format: str
    format_name: str
    samples: int
    summary: dict[str, Any] | None
    """What the import found: counts, classes, problems by kind."""
    state: str
    """ready; importing (a job imports it); failed (``error`` says why)."""
    job_id: int | None
    """The job that imported it, if one did."""
    error: str | None
    created_at: str | None

    @classmethod
    def of(cls, row: DatasetRow) -> DatasetView:
        return cls(**_fields(row))


class ImportingDatasetView(DatasetView):
    """A large upload's dataset, with the job that imports it."""

    job: JobView

    @classmethod
    def importing(cls, row: DatasetRow, job: JobView) -> ImportingDatasetView:
        return cls(**_fields(row), job=job)


def _fields(row: DatasetRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "task": row.task,
        "annotated": row.annotated,
        "format": row.format,
        "format_name": FORMAT_NAMES.get(row.format, row.format),
        "samples": row.samples,
        "summary": row.summary,
        "state": row.state,
        "job_id": (row.summary or {}).get("job"),
        "error": (row.summary or {}).get("error") if row.state == "failed" else None,
        "created_at": iso(row.created_at),
    }


class DatasetDetail(View):
    """What the dataset's page shows: the dataset, and the job importing it, if any."""

    dataset: DatasetView
    job: JobView | None


class ImportForm(BaseModel):
    """The import page's form, as typed (it is shown again with an error)."""

    name: str | None = None
    type: str | None = None
    next: str | None = None
