"""Datasets: import, read and delete through the API; the datasets page, the import form and
the dataset's page (which follows an import job)."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import Field

from calibench.errors import WorkbenchError
from calibench.server.web.datasets.schemas import DatasetView, ImportForm, ImportingDatasetView
from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.pages import page, safe_next, see
from calibench.server.web.uploads import Upload
from calibench.server.web.workbench import Workbench

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)

DATASET_TYPES = {
    "": "detect automatically",
    "classification": "classification (class folders or a labels file)",
    "detection": "detection (COCO or Pascal VOC)",
    "not-annotated": "images without annotations",
    "tensors": ".npz tensors",
}
OPTIMIZE_PAGE = re.compile(r"/projects/(\d+)/optimize")
"""The page an import may come from and go back to, with the form it left."""
Imported = Annotated[ImportingDatasetView | DatasetView, Field(union_mode="left_to_right")]


@api.get("/datasets")
def list_datasets(workbench: WorkbenchDep) -> list[DatasetView]:
    return workbench.datasets()


@api.post(
    "/datasets",
    status_code=201,
    response_model=Imported,
    responses={
        202: {
            "description": "A large upload: the dataset (``state``: ``importing``) with its "
            "import job under ``job``"
        }
    },
)
def upload_dataset(
    workbench: WorkbenchDep,
    response: Response,
    file: Annotated[UploadFile, File()],
    name: Annotated[str | None, Form()] = None,
    type: Annotated[str | None, Form()] = None,
) -> Any:
    """Import a dataset archive (.zip, .tar, .tar.gz, .tgz) or .npz; ``type`` is optional
    (classification, detection, not-annotated, tensors or one layout's name).

    A small upload is unpacked and checked at once: **201** with the dataset, ``state``
    ``ready``, its problems in ``summary``. A large one (by default above 64 MB, or whose
    archive or .npz headers say it unpacks to more) is imported by a job in a worker process:
    **202** with the dataset, ``state`` ``importing``, and the job under ``job`` (follow it at
    ``/api/jobs/{id}``: stages unpacking, checking samples, summary). When the job is done the
    dataset is ``ready`` with its problems; when it fails or is cancelled the dataset is
    ``failed``, ``error`` says why, and nothing it unpacked is kept. Projects and calibrations
    on a dataset that is not ready are refused (409)."""
    view = workbench.add_dataset(Upload(file.file, file.filename or ""), name, type or None)
    if isinstance(view, ImportingDatasetView):
        response.status_code = 202
    return view


@api.get("/datasets/{dataset_id}")
def get_dataset(workbench: WorkbenchDep, dataset_id: int) -> DatasetView:
    return workbench.dataset_view(dataset_id)


@api.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(workbench: WorkbenchDep, dataset_id: int) -> Response:
    """Delete a dataset no project uses, and its imported files."""
    workbench.delete_dataset(dataset_id)
    return Response(status_code=204)


@pages.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, workbench: WorkbenchDep) -> HTMLResponse:
    return page(request, "datasets.html", workbench.choices())


def _import_page(
    request: Request,
    workbench: Workbench,
    next: str,
    form: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The import form; coming from a project's Optimize INT8 page (``next``), its breadcrumbs
    lead back to that project and its Back link keeps what was typed there."""
    project = None
    found = OPTIMIZE_PAGE.fullmatch(urlsplit(next).path)
    if found:
        with contextlib.suppress(WorkbenchError):  # a deleted project: plain crumbs
            project = workbench.project_view(int(found.group(1)))
    context = {
        "next": next,
        "project": project,
        "types": DATASET_TYPES,
        "error": error,
        "form": form,
    }
    return page(request, "dataset_import.html", context, status=status)


@pages.get("/datasets/import", response_class=HTMLResponse)
def import_page(request: Request, workbench: WorkbenchDep, next: str | None = None) -> HTMLResponse:
    return _import_page(request, workbench, safe_next(next, "/datasets"), {})


@pages.post("/datasets/import", response_model=None)
def import_dataset(
    request: Request,
    _: CsrfDep,
    workbench: WorkbenchDep,
    form: Annotated[ImportForm, Form()],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    target = safe_next(form.next, "/datasets")
    try:
        if file is None or not file.filename:
            raise WorkbenchError("choose the dataset file to import")
        upload = Upload(file.file, file.filename)
        dataset = workbench.add_dataset(upload, form.name, form.type or None)
    except WorkbenchError as error:
        typed = {"name": form.name or "", "type": form.type or ""}
        return _import_page(request, workbench, target, typed, error.message, error.status)
    address = urlsplit(target)
    if OPTIMIZE_PAGE.fullmatch(address.path):  # back to the form, the new dataset picked
        chosen = urlencode({"dataset": dataset.id, "imported": dataset.id})
        rest = f"&{address.query}" if address.query else ""
        return see(f"{address.path}?{chosen}{rest}")
    # An import job's progress is shown there; a finished import says what it found.
    return see(f"/datasets/{dataset.id}?imported=1")


@pages.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request, workbench: WorkbenchDep, dataset_id: int, imported: bool = False
) -> HTMLResponse:
    """``?imported=1``: right after the import form, which says so above the summary."""
    detail = workbench.dataset_detail(dataset_id)
    context = {"d": detail.dataset, "job": detail.job, "imported": imported}
    return page(request, "dataset.html", context)


@pages.post("/datasets/{dataset_id}/delete", response_model=None)
def delete_dataset_form(_: CsrfDep, workbench: WorkbenchDep, dataset_id: int) -> Response:
    workbench.delete_dataset(dataset_id)
    return see("/datasets")
