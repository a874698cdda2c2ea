"""Projects: the projects list, a project's page, the new-project and optimize forms, the
comparison, and the same actions as JSON under ``/api``."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response

from calibench.errors import WorkbenchError
from calibench.server.web.datasets.schemas import ImportingDatasetView
from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.pages import page, see
from calibench.server.web.projects.calibration_data import (
    FEW_SAMPLES,
    TIP,
    subset_note,
    subset_samples,
)
from calibench.server.web.projects.forms import NewProject, NewProjectForm, Optimize, OptimizeForm
from calibench.server.web.projects.schemas import OptimizeRequest, ProjectCreate, ProjectView
from calibench.server.web.uploads import Upload
from calibench.server.web.workbench import Workbench

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)
FileField = Annotated[UploadFile | None, File()]


@api.get("/projects")
def list_projects(workbench: WorkbenchDep) -> list[ProjectView]:
    return workbench.projects()


@api.post("/projects", status_code=201)
def create_project(workbench: WorkbenchDep, body: ProjectCreate) -> ProjectView:
    """Create a project; its baseline inference (accuracy, performance) starts as a job.

    Refused (400), in words, when the dataset cannot feed the model: images for a model that
    takes token ids or several inputs, an input of other than 1 or 3 channels or not of 4
    dimensions, an .npz without an array per input or of another rank, sizes or number kind,
    a resize or crop that misses the input's size."""
    return workbench.create_project(**body.model_dump())


@api.get("/projects/{project_id}")
def get_project(workbench: WorkbenchDep, project_id: int) -> ProjectView:
    return workbench.project_view(project_id)


@api.delete("/projects/{project_id}", status_code=204)
def delete_project(workbench: WorkbenchDep, project_id: int) -> Response:
    """Delete a project whose jobs have ended and which no INT8 project was made from; an INT8
    project's model goes with it."""
    workbench.delete_project(project_id)
    return Response(status_code=204)


@api.post("/projects/{project_id}/optimize", status_code=201)
def optimize(workbench: WorkbenchDep, project_id: int, body: OptimizeRequest) -> ProjectView:
    """INT8 calibration: creates the INT8 project at once and starts its job."""
    return workbench.optimize(project_id, **body.model_dump())


@api.get("/projects/{project_id}/compare")
def compare(workbench: WorkbenchDep, project_id: int) -> dict[str, Any]:
    """The INT8 project's model beside its FP32 parent."""
    comparison, _ = workbench.comparison(project_id)
    return comparison


# pages -------------------------------------------------------------------------------------------


@pages.get("/", response_class=HTMLResponse)
def projects_page(request: Request, workbench: WorkbenchDep) -> HTMLResponse:
    return page(request, "projects.html", {"projects": workbench.projects()})


@pages.get("/fragments/projects", response_class=HTMLResponse)
def projects_fragment(request: Request, workbench: WorkbenchDep) -> HTMLResponse:
    return page(request, "_projects_table.html", {"projects": workbench.projects()})


@pages.get("/projects/new", response_class=HTMLResponse)
def new_project_page(request: Request, workbench: WorkbenchDep) -> HTMLResponse:
    return page(request, "project_new.html", {**workbench.choices(), "form": {}, "error": None})


@pages.post("/projects/new", response_model=None)
def new_project(
    request: Request,
    _: CsrfDep,
    workbench: WorkbenchDep,
    form: Annotated[NewProjectForm, Form()],
    model_file: FileField = None,
    dataset_file: FileField = None,
) -> Response:
    """The project form may carry a new model and a new dataset: they are uploaded first (and
    stay, when the project is then refused)."""
    model_id, dataset_id = form.model_id, form.dataset_id
    imported: list[str] = []
    try:
        if model_file is not None and model_file.filename:
            upload = Upload(model_file.file, model_file.filename)
            model = workbench.add_model(upload, form.model_name)
            model_id = str(model.id)
            imported.append(f"model {model.name!r} uploaded")
        if dataset_file is not None and dataset_file.filename:
            upload = Upload(dataset_file.file, dataset_file.filename)
            dataset = workbench.add_dataset(upload, form.dataset_name, form.dataset_type)
            dataset_id = str(dataset.id)
            if isinstance(dataset, ImportingDatasetView):
                imported.append(
                    f"dataset {dataset.name!r} is large: it is being imported by job "
                    f"{dataset.job.id}; create the project once it is ready"
                )
            else:
                imported.append(f"dataset {dataset.name!r} imported")
        project = workbench.create_project(**dict(NewProject.of(form, model_id, dataset_id)))
    except (WorkbenchError, ValueError) as error:
        message = error.message if isinstance(error, WorkbenchError) else f"invalid value: {error}"
        status = error.status if isinstance(error, WorkbenchError) else 400
        shown = {**form.shown(), "model_id": model_id or "", "dataset_id": dataset_id or ""}
        # What was uploaded is kept and selected: its name field is not for another upload.
        if model_id != form.model_id:
            shown["model_name"] = ""
        if dataset_id != form.dataset_id:
            shown["dataset_name"] = ""
        context = {**workbench.choices(), "form": shown, "error": message, "imported": imported}
        return page(request, "project_new.html", context, status=status)
    return see(f"/projects/{project.id}")


@pages.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(
    request: Request, workbench: WorkbenchDep, project_id: int, tab: str = "analyze"
) -> HTMLResponse:
    detail = workbench.project_detail(project_id)
    context = {
        "p": detail.project,
        "jobs": detail.jobs,
        "parent": detail.parent,
        "children": detail.children,
        "tab": "perform" if tab == "perform" else "analyze",
    }
    return page(request, "project.html", context)


@pages.get("/fragments/projects/{project_id}/status", response_class=HTMLResponse)
def project_status_fragment(
    request: Request, workbench: WorkbenchDep, project_id: int
) -> HTMLResponse:
    view = workbench.project_view(project_id)
    return page(request, "_job_status.html", {"p": view, "job": view.job})


def _optimize_page(
    request: Request,
    workbench: Workbench,
    project_id: int,
    form: OptimizeForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The Optimize INT8 page: the form as typed (from a refused post, or carried through the
    dataset import in the address), else the project's defaults."""
    found = workbench.optimize_page(project_id)
    settings = found.project.settings
    query = request.query_params
    chosen = query.get("imported") or query.get("dataset")
    if form is None:
        defaults = {
            "dataset_id": str(found.suggested_dataset_id),
            "max_drop": "1",
            "batch": str(settings.get("batch", 1)),
            "streams": str(settings.get("streams", 1)),
            "runtime": settings.get("runtime", "onnxruntime"),
        }
        form = OptimizeForm.from_query(query, defaults)
        if chosen:
            form = form.model_copy(update={"dataset_id": chosen})
    datasets = {d.id: d for d in found.datasets}
    imported = (
        datasets.get(int(chosen)) if chosen and chosen.isdigit() and query.get("imported") else None
    )
    shown = form.shown(accuracy_aware=found.accuracy_aware_refusal is None)
    picked = datasets.get(int(shown["dataset_id"])) if shown["dataset_id"].isdigit() else None
    context = {
        "p": found.project,
        "datasets": found.datasets,
        "aa_refusal": found.accuracy_aware_refusal,
        "presets": found.presets,
        "targets": found.targets,
        "unfit": found.unfit,
        "form": shown,
        "error": error,
        "imported": imported,
        "subset_note": subset_note(shown["subset"], picked.samples) if picked else "",
        "subset_few": bool(
            picked and (subset_samples(shown["subset"], picked.samples) or 0) < FEW_SAMPLES
        ),
        "few_samples": FEW_SAMPLES,
        "tip": TIP,
    }
    return page(request, "optimize.html", context, status=status)


@pages.get("/projects/{project_id}/optimize", response_class=HTMLResponse)
def optimize_page(request: Request, workbench: WorkbenchDep, project_id: int) -> HTMLResponse:
    """``?dataset=ID`` picks the calibration dataset (``imported=ID``: and says it was just
    imported); the form's other fields may come in the address too, as the import carries
    them."""
    return _optimize_page(request, workbench, project_id)


@pages.post("/projects/{project_id}/optimize", response_model=None)
def optimize_form(
    request: Request,
    _: CsrfDep,
    workbench: WorkbenchDep,
    project_id: int,
    form: Annotated[OptimizeForm, Form()],
) -> Response:
    if form.action == "import":  # Import Calibration Dataset: the form comes back as typed
        back = f"/projects/{project_id}/optimize?{form.query()}"
        return see("/datasets/import?" + urlencode({"next": back}))
    try:
        child = workbench.optimize(project_id, **dict(Optimize.of(form)))
    except WorkbenchError as error:
        return _optimize_page(request, workbench, project_id, form, error.message, error.status)
    return see(f"/projects/{child.id}")


@pages.get("/projects/{project_id}/compare/report", response_model=None)
def compare_report(workbench: WorkbenchDep, project_id: int) -> Response:
    _, path = workbench.comparison(project_id)
    if not path.is_file():
        raise WorkbenchError("the comparison report file is missing", 404)
    return FileResponse(path, media_type="text/html")


@pages.post("/projects/{project_id}/delete", response_model=None)
def delete_project_form(_: CsrfDep, workbench: WorkbenchDep, project_id: int) -> Response:
    workbench.delete_project(project_id)
    return see("/")
