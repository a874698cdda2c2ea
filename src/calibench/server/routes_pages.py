"""The pages: server-rendered, with small fragments that refresh themselves while jobs run."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from calibench.data.importer import KINDS as DATASET_KINDS
from calibench.server.app import check_csrf, page
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.service import (
    METRICS,
    PRESET_HELP,
    Upload,
    Workbench,
    WorkbenchError,
    dataset_view,
    job_view,
    model_view,
)

router = APIRouter(include_in_schema=False)

DATASET_TYPES = {
    "": "detect automatically",
    "classification": "classification (class folders or a labels file)",
    "detection": "detection (COCO or Pascal VOC)",
    "not-annotated": "images without annotations",
    "tensors": ".npz tensors",
}


def _wb(request: Request) -> Workbench:
    workbench: Workbench = request.app.state.workbench
    return workbench


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str | None, default: str) -> str:
    """Only this site's own paths: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _int(value: str | None, what: str, default: int | None = None) -> int:
    if value is None or value.strip() == "":
        if default is None:
            raise WorkbenchError(f"choose a {what}")
        return default
    try:
        return int(value)
    except ValueError as error:
        raise WorkbenchError(f"{what} must be a whole number, not {value[:20]!r}") from error


def _float(value: str | None, what: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError as error:
        raise WorkbenchError(f"{what} must be a number, not {value[:20]!r}") from error
    if not math.isfinite(number):
        raise WorkbenchError(f"{what} must be a finite number, not {value[:20]!r}")
    return number


def _floats(text: str, what: str) -> list[float]:
    """Comma-separated numbers, e.g. a mean per channel."""
    numbers = []
    for part in text.split(","):
        number = _float(part, what)
        if number is None:
            raise WorkbenchError(f"{what} must be numbers separated by commas, not {text[:40]!r}")
        numbers.append(number)
    return numbers


def _or(value: float | None, default: float) -> float:
    """``default`` for a field left empty (0 is a value, and is checked)."""
    return default if value is None else value


def _scale(text: str) -> float:
    """``1/255``, ``0.00392`` or ``1``."""
    top, _, bottom = text.strip().partition("/")
    try:
        value = float(top) / float(bottom) if bottom else float(top)
    except (ValueError, ZeroDivisionError) as error:
        raise WorkbenchError(
            f"the pixel scale must be a number like 1/255 or 1, not {text[:20]!r}"
        ) from error
    if not math.isfinite(value):
        raise WorkbenchError(f"the pixel scale must be a finite number, not {text[:20]!r}")
    if value <= 0:
        raise WorkbenchError("the pixel scale must be above 0")
    return value


def _lists(request: Request) -> dict[str, Any]:
    with _wb(request).sessions() as session:
        return {
            "metrics": METRICS,
            "models": [
                model_view(m)
                for m in session.scalars(
                    select(ModelRow).where(ModelRow.state == "ready").order_by(ModelRow.id)
                )
            ],
            "datasets": [
                dataset_view(d) for d in session.scalars(select(DatasetRow).order_by(DatasetRow.id))
            ],
        }


# projects ----------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def projects_page(request: Request) -> HTMLResponse:
    return page(request, "projects.html", {"projects": _wb(request).projects()})


@router.get("/fragments/projects", response_class=HTMLResponse)
def projects_fragment(request: Request) -> HTMLResponse:
    return page(request, "_projects_table.html", {"projects": _wb(request).projects()})


@router.get("/projects/new", response_class=HTMLResponse)
def new_project_page(request: Request) -> HTMLResponse:
    return page(request, "project_new.html", {**_lists(request), "form": {}, "error": None})


@router.post("/projects/new", response_model=None)
def new_project(
    request: Request,
    csrf_token: str | None = Form(None),
    model_id: str | None = Form(None),
    model_file: UploadFile | None = File(None),
    model_name: str | None = Form(None),
    dataset_id: str | None = Form(None),
    dataset_file: UploadFile | None = File(None),
    dataset_name: str | None = Form(None),
    dataset_type: str | None = Form(None),
    batch: str | None = Form("1"),
    streams: str | None = Form("1"),
    scale: str | None = Form(None),
    mean: str | None = Form(None),
    std: str | None = Form(None),
    color: str | None = Form(None),
    metric: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf_token)
    workbench = _wb(request)
    form = {k: v for k, v in locals().items() if isinstance(v, str) and k != "csrf_token"}
    problems: list[str] = []
    imported: list[str] = []
    try:
        if model_file is not None and model_file.filename:
            model = workbench.add_model(Upload(model_file.file, model_file.filename), model_name)
            model_id = str(model["id"])
            imported.append(f"model {model['name']!r} uploaded")
        if dataset_file is not None and dataset_file.filename:
            dataset = workbench.add_dataset(
                Upload(dataset_file.file, dataset_file.filename), dataset_name, dataset_type
            )
            dataset_id = str(dataset["id"])
            if dataset["state"] == "importing":
                imported.append(
                    f"dataset {dataset['name']!r} is large: it is being imported by job "
                    f"{dataset['job']['id']}; create the project once it is ready"
                )
            else:
                imported.append(f"dataset {dataset['name']!r} imported")
        preprocess: dict[str, Any] = {}
        if scale and scale.strip():
            preprocess["scale"] = _scale(scale)
        if mean and mean.strip():
            preprocess["mean"] = _floats(mean, "the mean")
        if std and std.strip():
            preprocess["std"] = _floats(std, "the standard deviation")
        if color and color.strip():
            preprocess["color"] = color.strip()
        project = workbench.create_project(
            _int(model_id, "model"),
            _int(dataset_id, "dataset"),
            _int(batch, "batch size", 1),
            _int(streams, "number of streams", 1),
            preprocess or None,
            (metric or "").strip() or None,
        )
    except (WorkbenchError, ValueError) as error:
        message = error.message if isinstance(error, WorkbenchError) else f"invalid value: {error}"
        problems.append(message)
        form.update(model_id=model_id or "", dataset_id=dataset_id or "")
        status = error.status if isinstance(error, WorkbenchError) else 400
        context = {**_lists(request), "form": form, "error": " ".join(problems)}
        context["imported"] = imported
        return page(request, "project_new.html", context, status=status)
    return _see(f"/projects/{project['id']}")


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def project_page(request: Request, project_id: int, tab: str = "analyze") -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = workbench.project_view(session, workbench.project(session, project_id))
        jobs = [
            job_view(j)
            for j in session.scalars(
                select(JobRow).where(JobRow.project_id == project_id).order_by(JobRow.id.desc())
            )
        ]
        parent = (
            workbench.project_view(session, workbench.project(session, view["parent_id"]))
            if view["parent_id"]
            else None
        )
        children = [
            workbench.project_view(session, workbench.project(session, c)) for c in view["children"]
        ]
    return page(
        request,
        "project.html",
        {
            "p": view,
            "jobs": jobs,
            "parent": parent,
            "children": children,
            "tab": "perform" if tab == "perform" else "analyze",
        },
    )


@router.get("/fragments/projects/{project_id}/status", response_class=HTMLResponse)
def project_status_fragment(request: Request, project_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = workbench.project_view(session, workbench.project(session, project_id))
    return page(request, "_job_status.html", {"p": view, "job": view["job"]})


# optimize ----------------------------------------------------------------------------------------


def _optimize_context(request: Request, project_id: int) -> dict[str, Any]:
    workbench = _wb(request)
    with workbench.sessions() as session:
        project = workbench.project(session, project_id)
        view = workbench.project_view(session, project)
        own = session.get(DatasetRow, project.dataset_id)
    lists = _lists(request)
    return {
        "p": view,
        "datasets": lists["datasets"],
        "aa_refusal": workbench.accuracy_aware_refusal(own) if own else "no dataset",
        "presets": PRESET_HELP,
    }


@router.get("/projects/{project_id}/optimize", response_class=HTMLResponse)
def optimize_page(request: Request, project_id: int, dataset: int | None = None) -> HTMLResponse:
    context = _optimize_context(request, project_id)
    form = {
        "dataset_id": str(dataset or context["p"]["dataset"]["id"]),
        "subset": "100",
        "method": "default",
        "max_drop": "1",
        "drop_type": "absolute",
        "preset": "performance",
        "keep_fp32": "",
        "batch": str(context["p"]["settings"].get("batch", 1)),
        "streams": str(context["p"]["settings"].get("streams", 1)),
    }
    return page(request, "optimize.html", {**context, "form": form, "error": None})


@router.post("/projects/{project_id}/optimize", response_model=None)
def optimize(
    request: Request,
    project_id: int,
    csrf_token: str | None = Form(None),
    dataset_id: str | None = Form(None),
    subset: str | None = Form("100"),
    method: str = Form("default"),
    max_drop: str | None = Form(None),
    drop_type: str = Form("absolute"),
    preset: str = Form("performance"),
    keep_fp32: str | None = Form(None),
    batch: str | None = Form(None),
    streams: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf_token)
    form = {
        "dataset_id": dataset_id or "",
        "subset": subset or "",
        "method": method,
        "max_drop": max_drop or "",
        "drop_type": drop_type,
        "preset": preset,
        "keep_fp32": keep_fp32 or "",
        "batch": batch or "",
        "streams": streams or "",
    }
    try:
        child = _wb(request).optimize(
            project_id,
            _int(dataset_id, "calibration dataset"),
            _or(_float(subset, "Subset Size"), 100.0),
            method,
            _float(max_drop, "Maximum Accuracy Drop"),
            preset,
            None if not (batch or "").strip() else _int(batch, "batch size"),
            None if not (streams or "").strip() else _int(streams, "number of streams"),
            drop_type,
            _patterns(keep_fp32),
        )
    except WorkbenchError as error:
        context = _optimize_context(request, project_id)
        return page(
            request,
            "optimize.html",
            {**context, "form": form, "error": error.message},
            status=error.status,
        )
    return _see(f"/projects/{child['id']}")


# datasets ----------------------------------------------------------------------------------------


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request) -> HTMLResponse:
    return page(request, "datasets.html", _lists(request))


@router.get("/datasets/import", response_class=HTMLResponse)
def import_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(
        request,
        "dataset_import.html",
        {"next": _safe_next(next, "/datasets"), "types": DATASET_TYPES, "error": None, "form": {}},
    )


@router.post("/datasets/import", response_model=None)
def import_dataset(
    request: Request,
    csrf_token: str | None = Form(None),
    file: UploadFile | None = File(None),
    name: str | None = Form(None),
    type: str | None = Form(None),
    next: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf_token)
    target = _safe_next(next, "/datasets")
    try:
        if file is None or not file.filename:
            raise WorkbenchError("choose the dataset file to import")
        if type and type not in DATASET_KINDS:
            raise WorkbenchError(f"unknown dataset type {type[:40]!r}")
        dataset = _wb(request).add_dataset(Upload(file.file, file.filename), name, type or None)
    except WorkbenchError as error:
        return page(
            request,
            "dataset_import.html",
            {
                "next": target,
                "types": DATASET_TYPES,
                "error": error.message,
                "form": {"name": name or "", "type": type or ""},
            },
            status=error.status,
        )
    separator = "&" if "?" in target else "?"
    if target.endswith("/optimize"):
        return _see(f"{target}{separator}dataset={dataset['id']}")
    return _see(f"/datasets/{dataset['id']}")  # an import job's progress is shown there


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(request: Request, dataset_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = dataset_view(workbench.dataset(session, dataset_id))
        job = session.get(JobRow, view["job_id"]) if isinstance(view["job_id"], int) else None
        job_info = job_view(job) if job is not None else None
    return page(request, "dataset.html", {"d": view, "job": job_info})


# models ------------------------------------------------------------------------------------------


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(request: Request, model_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        model = workbench.model(session, model_id)
        view = model_view(model)
        layers = model.layers
        projects = [
            workbench.project_view(session, p)
            for p in session.scalars(
                select(ProjectRow).where(ProjectRow.model_id == model_id).order_by(ProjectRow.id)
            )
        ]
        parent = model_view(workbench.model(session, model.parent_id)) if model.parent_id else None
    return page(
        request,
        "model.html",
        {"m": view, "layers": layers, "projects": projects, "parent": parent},
    )


# compare -----------------------------------------------------------------------------------------


@router.get("/projects/{project_id}/compare", response_class=HTMLResponse)
def compare_page(request: Request, project_id: int) -> HTMLResponse:
    workbench = _wb(request)
    comparison, _ = workbench.comparison(project_id)
    with workbench.sessions() as session:
        project = workbench.project(session, project_id)
        int8 = workbench.project_view(session, project)
        assert project.parent_id is not None
        fp32 = workbench.project_view(session, workbench.project(session, project.parent_id))
    return page(request, "compare.html", {"c": comparison, "int8": int8, "fp32": fp32})


@router.get("/projects/{project_id}/compare/report", response_model=None)
def compare_report(request: Request, project_id: int) -> Response:
    _, path = _wb(request).comparison(project_id)
    if not path.is_file():
        raise WorkbenchError("the comparison report file is missing", 404)
    return FileResponse(path, media_type="text/html")


# jobs --------------------------------------------------------------------------------------------


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = job_view(workbench.job(session, job_id))
    return page(request, "job.html", {"job": view, "log": workbench.job_log(job_id)})


@router.get("/fragments/jobs/{job_id}/log", response_class=HTMLResponse)
def job_log_fragment(request: Request, job_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = job_view(workbench.job(session, job_id))
    return page(request, "_job_log.html", {"job": view, "log": workbench.job_log(job_id)})


@router.get("/fragments/jobs/{job_id}/stages", response_class=HTMLResponse)
def job_stages_fragment(request: Request, job_id: int) -> HTMLResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        view = job_view(workbench.job(session, job_id))
    return page(request, "_job_stages.html", {"job": view})


@router.post("/jobs/{job_id}/cancel", response_model=None)
def cancel_job(
    request: Request,
    job_id: int,
    csrf_token: str | None = Form(None),
    next: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf_token)
    _wb(request).cancel(job_id)
    return _see(_safe_next(next, f"/jobs/{job_id}"))


@router.post("/jobs/{job_id}/retry", response_model=None)
def retry_job(
    request: Request,
    job_id: int,
    csrf_token: str | None = Form(None),
    next: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf_token)
    _wb(request).retry(job_id)
    return _see(_safe_next(next, f"/jobs/{job_id}"))


# deleting ----------------------------------------------------------------------------------------


@router.post("/projects/{project_id}/delete", response_model=None)
def delete_project(
    request: Request, project_id: int, csrf_token: str | None = Form(None)
) -> Response:
    check_csrf(request, csrf_token)
    _wb(request).delete_project(project_id)
    return _see("/")


@router.post("/datasets/{dataset_id}/delete", response_model=None)
def delete_dataset(
    request: Request, dataset_id: int, csrf_token: str | None = Form(None)
) -> Response:
    check_csrf(request, csrf_token)
    _wb(request).delete_dataset(dataset_id)
    return _see("/datasets")


@router.post("/models/{model_id}/delete", response_model=None)
def delete_model(request: Request, model_id: int, csrf_token: str | None = Form(None)) -> Response:
    check_csrf(request, csrf_token)
    _wb(request).delete_model(model_id)
    return _see("/")


def _patterns(text: str | None) -> list[str]:
    """Keep-FP32 patterns, comma-separated (a comma inside a regex's {m,n} stays)."""
    parts = re.split(r",(?![^{]*\})", text or "")
    patterns = [p.strip() for p in parts if p.strip()]
    if len(patterns) > 64 or any(len(p) > 200 for p in patterns):
        raise WorkbenchError("Keep in FP32 takes at most 64 patterns of at most 200 characters")
    return patterns
