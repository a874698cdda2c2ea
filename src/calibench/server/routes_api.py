"""The JSON API: every action of the pages, under ``/api``. OpenAPI schema at /openapi.json,
readable at /api/docs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from calibench.server.db import DatasetRow, JobRow, ModelRow
from calibench.server.service import (
    Upload,
    Workbench,
    WorkbenchError,
    dataset_view,
    job_view,
    model_view,
)

router = APIRouter(prefix="/api", tags=["api"])


def _wb(request: Request) -> Workbench:
    workbench: Workbench = request.app.state.workbench
    return workbench


class ProjectCreate(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    model_id: int
    dataset_id: int
    batch: int = Field(1, ge=1, le=1024, description="inference batch size")
    streams: int = Field(1, ge=1, le=64, description="parallel inference streams")
    preprocess: dict[str, Any] | None = Field(
        None,
        description="image preprocessing: resize, crop, scale, mean, std, color (RGB|BGR|GRAY), "
        "layout (NCHW|NHWC); default: fitted to the model's input",
    )
    metric: str | None = Field(
        None,
        description="top1 or topk (top-1 and top-5 accuracy) or map:yolox|yolov5|yolov8|ssd "
        "(detection mAP with the model's output decoder); "
        "default: top-1/top-5 for classification",
    )


class OptimizeRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    dataset_id: int = Field(description="the calibration dataset")
    subset_percent: float = Field(100, gt=0, le=100, description="Subset Size, percent")
    method: str = Field("default", pattern="^(default|accuracy-aware)$")
    max_drop: float | None = Field(
        None, ge=0, lt=100, description="Maximum Accuracy Drop (AccuracyAware), see drop_type"
    )
    drop_type: str = Field(
        "absolute",
        pattern="^(absolute|relative)$",
        description="absolute: points of the metric; relative: percent of FP32's accuracy",
    )
    preset: str = Field("performance", pattern="^(performance|mixed)$")
    keep_fp32: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=64,
        description="layers kept in FP32: layer names, op types or regexes over the names",
    )
    batch: int | None = Field(None, ge=1, le=1024, description="default: the parent project's")
    streams: int | None = Field(None, ge=1, le=64, description="default: the parent project's")


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    runner = request.app.state.runner
    return {"status": "ok", "running_jobs": runner.running()}


@router.get("/models")
def list_models(request: Request) -> list[dict[str, Any]]:
    with _wb(request).sessions() as session:
        return [model_view(m) for m in session.scalars(select(ModelRow).order_by(ModelRow.id))]


@router.post("/models", status_code=201)
def upload_model(
    request: Request, file: UploadFile = File(...), name: str | None = Form(None)
) -> dict[str, Any]:
    """Upload an ONNX model (``multipart/form-data``: ``file``, optional ``name``)."""
    return _wb(request).add_model(Upload(file.file, file.filename or ""), name)


@router.get("/models/{model_id}")
def get_model(request: Request, model_id: int) -> dict[str, Any]:
    workbench = _wb(request)
    with workbench.sessions() as session:
        return model_view(workbench.model(session, model_id))


@router.get("/models/{model_id}/layers")
def model_layers(request: Request, model_id: int) -> list[dict[str, Any]]:
    """Layer name, type, runtime precision, outputPrecisions (U8 for INT8), time, reason."""
    workbench = _wb(request)
    with workbench.sessions() as session:
        model = workbench.model(session, model_id)
        if model.state == "failed":
            raise WorkbenchError(
                f"model {model_id} was not made (its calibration job failed or was cancelled): "
                "it has no layer table",
                409,
            )
        if model.layers is None:
            raise WorkbenchError(
                f"model {model_id}'s layer table is made by its first inference job, which "
                "has not finished",
                409,
            )
        return list(model.layers)


@router.get("/models/{model_id}/file")
def download_model(request: Request, model_id: int) -> FileResponse:
    workbench = _wb(request)
    with workbench.sessions() as session:
        model = workbench.model(session, model_id)
        if model.state == "failed":
            raise WorkbenchError(
                f"model {model_id} was not made (its calibration job failed or was cancelled): "
                "there is no file",
                409,
            )
        if model.state != "ready":
            raise WorkbenchError(f"model {model_id} is {model.state}: there is no file yet", 409)
        name = f"{model.name.replace(' ', '_')}.onnx"
        path = workbench.workspace / model.path
        if not path.is_file():
            raise WorkbenchError(
                f"the file of model {model.name!r} is missing from the workspace ({model.path}): "
                "it was deleted outside the workbench; delete the model and upload it again",
                410,
            )
        return FileResponse(path, filename=name)


@router.delete("/models/{model_id}", status_code=204)
def delete_model(request: Request, model_id: int) -> Response:
    """Delete a model no project uses (and no INT8 model was made from)."""
    _wb(request).delete_model(model_id)
    return Response(status_code=204)


@router.get("/datasets")
def list_datasets(request: Request) -> list[dict[str, Any]]:
    with _wb(request).sessions() as session:
        rows = session.scalars(select(DatasetRow).order_by(DatasetRow.id))
        return [dataset_view(d) for d in rows]


@router.post(
    "/datasets",
    status_code=201,
    responses={
        202: {
            "description": "A large upload: the dataset (``state``: ``importing``) with its "
            "import job under ``job``"
        }
    },
)
def upload_dataset(
    request: Request,
    response: Response,
    file: UploadFile = File(...),
    name: str | None = Form(None),
    type: str | None = Form(None),
) -> dict[str, Any]:
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
    view = _wb(request).add_dataset(Upload(file.file, file.filename or ""), name, type or None)
    if view["state"] == "importing":
        response.status_code = 202
    return view


@router.get("/datasets/{dataset_id}")
def get_dataset(request: Request, dataset_id: int) -> dict[str, Any]:
    workbench = _wb(request)
    with workbench.sessions() as session:
        return dataset_view(workbench.dataset(session, dataset_id))


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(request: Request, dataset_id: int) -> Response:
    """Delete a dataset no project uses, and its imported files."""
    _wb(request).delete_dataset(dataset_id)
    return Response(status_code=204)


@router.get("/projects")
def list_projects(request: Request) -> list[dict[str, Any]]:
    return _wb(request).projects()


@router.post("/projects", status_code=201)
def create_project(request: Request, body: ProjectCreate) -> dict[str, Any]:
    """Create a project; its baseline inference (accuracy, performance) starts as a job."""
    return _wb(request).create_project(
        body.model_id, body.dataset_id, body.batch, body.streams, body.preprocess, body.metric
    )


@router.get("/projects/{project_id}")
def get_project(request: Request, project_id: int) -> dict[str, Any]:
    workbench = _wb(request)
    with workbench.sessions() as session:
        return workbench.project_view(session, workbench.project(session, project_id))


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(request: Request, project_id: int) -> Response:
    """Delete a project whose jobs have ended and which no INT8 project was made from; an INT8
    project's model goes with it."""
    _wb(request).delete_project(project_id)
    return Response(status_code=204)


@router.post("/projects/{project_id}/optimize", status_code=201)
def optimize(request: Request, project_id: int, body: OptimizeRequest) -> dict[str, Any]:
    """INT8 calibration: creates the INT8 project at once and starts its job."""
    return _wb(request).optimize(
        project_id,
        body.dataset_id,
        body.subset_percent,
        body.method,
        body.max_drop,
        body.preset,
        body.batch,
        body.streams,
        body.drop_type,
        body.keep_fp32,
    )


@router.get("/projects/{project_id}/compare")
def compare(request: Request, project_id: int) -> dict[str, Any]:
    """The INT8 project's model beside its FP32 parent."""
    comparison, _ = _wb(request).comparison(project_id)
    return comparison


@router.get("/jobs")
def list_jobs(request: Request, state: str | None = None) -> list[dict[str, Any]]:
    with _wb(request).sessions() as session:
        query = select(JobRow).order_by(JobRow.id)
        if state:
            query = query.where(JobRow.state == state)
        return [job_view(j) for j in session.scalars(query)]


@router.get("/jobs/{job_id}")
def get_job(request: Request, job_id: int) -> dict[str, Any]:
    workbench = _wb(request)
    with workbench.sessions() as session:
        return job_view(workbench.job(session, job_id))


@router.get("/jobs/{job_id}/log", response_class=PlainTextResponse)
def job_log(request: Request, job_id: int) -> str:
    return _wb(request).job_log(job_id)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(request: Request, job_id: int) -> dict[str, Any]:
    return _wb(request).cancel(job_id)


@router.post("/jobs/{job_id}/retry")
def retry_job(request: Request, job_id: int) -> dict[str, Any]:
    return _wb(request).retry(job_id)


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request) -> HTMLResponse:
    from calibench.server.app import page

    schema = request.app.openapi()
    endpoints = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {})
            endpoints.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "body": ", ".join(body),
                    "params": [p["name"] for p in op.get("parameters", [])],
                }
            )
    return page(
        request,
        "api_docs.html",
        {"endpoints": endpoints, "schemas": schema.get("components", {}).get("schemas", {})},
    )
