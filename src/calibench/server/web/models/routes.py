"""Models: upload, read, download and delete through the API; the model's page and its delete
form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse, HTMLResponse

from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.models.schemas import ModelView
from calibench.server.web.pages import page, see
from calibench.server.web.uploads import Upload

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)


@api.get("/models")
def list_models(workbench: WorkbenchDep) -> list[ModelView]:
    return workbench.models()


@api.post("/models", status_code=201)
def upload_model(
    workbench: WorkbenchDep,
    file: Annotated[UploadFile, File()],
    name: Annotated[str | None, Form()] = None,
) -> ModelView:
    """Upload an ONNX model (``multipart/form-data``: ``file``, optional ``name``)."""
    return workbench.add_model(Upload(file.file, file.filename or ""), name)


@api.get("/models/{model_id}")
def get_model(workbench: WorkbenchDep, model_id: int) -> ModelView:
    return workbench.model_view(model_id)


@api.get("/models/{model_id}/layers")
def model_layers(workbench: WorkbenchDep, model_id: int) -> list[dict[str, Any]]:
    """Layer name, type, runtime precision, outputPrecisions (U8 for INT8), time, reason."""
    return workbench.model_layers(model_id)


@api.get("/models/{model_id}/file")
def download_model(workbench: WorkbenchDep, model_id: int) -> FileResponse:
    path, name = workbench.model_download(model_id)
    return FileResponse(path, filename=name)


@api.delete("/models/{model_id}", status_code=204)
def delete_model(workbench: WorkbenchDep, model_id: int) -> Response:
    """Delete a model no project uses (and no INT8 model was made from)."""
    workbench.delete_model(model_id)
    return Response(status_code=204)


@pages.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(request: Request, workbench: WorkbenchDep, model_id: int) -> HTMLResponse:
    found = workbench.model_page(model_id)
    context = {
        "m": found.model,
        "layers": found.layers,
        "summary": found.summary,
        "projects": found.projects,
        "parent": found.parent,
    }
    return page(request, "model.html", context)


@pages.post("/models/{model_id}/delete", response_model=None)
def delete_model_form(_: CsrfDep, workbench: WorkbenchDep, model_id: int) -> Response:
    workbench.delete_model(model_id)
    return see("/")
