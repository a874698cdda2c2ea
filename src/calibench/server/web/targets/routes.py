"""Targets: the targets page (add with the host key accepted once, check, set up, remove), a
target's page with its findings, the fleet comparison of a model, and the same as JSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from calibench.errors import WorkbenchError
from calibench.server.web.deps import CsrfDep, WorkbenchDep
from calibench.server.web.pages import page, see
from calibench.server.web.targets.schemas import (
    FleetView,
    HostKeyQuestion,
    SetupView,
    TargetAdd,
    TargetView,
)
from calibench.server.web.targets.service import HostKeyUnknown
from calibench.server.web.workbench import Workbench

api = APIRouter(prefix="/api", tags=["api"])
pages = APIRouter(include_in_schema=False)


def _question(error: HostKeyUnknown) -> HostKeyQuestion:
    return HostKeyQuestion(detail=error.message, fingerprint=error.fingerprint, which=error.which)


@api.get("/targets")
def list_targets(workbench: WorkbenchDep) -> list[TargetView]:
    """The registered targets (the workspace's targets.json, as ``calibench target list``) and
    their status: available, busy, unreachable, setup failed, or not checked yet."""
    return workbench.targets()


@api.post(
    "/targets",
    status_code=201,
    response_model=TargetView,
    responses={409: {"model": HostKeyQuestion, "description": "the host key is not known yet"}},
)
def add_target(workbench: WorkbenchDep, body: TargetAdd) -> Any:
    """Register a machine. Its host key must be accepted once: the first attempt answers 409
    with the key's SHA256 fingerprint; compare it on the machine and add again with
    ``accept_host_key``. Nothing is stored until a login with the accepted key succeeds."""
    try:
        return workbench.add_target(**body.model_dump())
    except HostKeyUnknown as error:
        return JSONResponse(_question(error).model_dump(), status_code=409)


@api.get("/targets/{name}")
def get_target(workbench: WorkbenchDep, name: str) -> TargetView:
    return workbench.target_view(name)


@api.delete("/targets/{name}", status_code=204)
def remove_target(workbench: WorkbenchDep, name: str) -> Response:
    """Forget a target (its folder there stays); refused while one of its jobs is live."""
    workbench.remove_target(name)
    return Response(status_code=204)


@api.post("/targets/{name}/check")
def check_target(workbench: WorkbenchDep, name: str) -> TargetView:
    """OS, Python, CPU and its INT8 flags, cores, memory, disk, and the verdict on INT8 there; a
    changed host key is refused (409) and nothing runs."""
    return workbench.check_target(name)


@api.post("/targets/{name}/setup")
def setup_target(workbench: WorkbenchDep, name: str, force: bool = False) -> SetupView:
    """Install calibench on the target from this server's wheels (no internet there), or reuse
    it while up to date; each step's outcome, or the step that failed and why."""
    return workbench.setup_target(name, force)


@api.get("/models/{model_id}/fleet")
def fleet(workbench: WorkbenchDep, model_id: int) -> FleetView:
    """The model's FP32 and INT8 throughput and latency on this machine and every target with a
    project of it, with each CPU's INT8 verdict."""
    return workbench.fleet(model_id)


# pages -------------------------------------------------------------------------------------------


def _targets_page(
    request: Request,
    workbench: Workbench,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    question: HostKeyQuestion | None = None,
    status: int = 200,
) -> HTMLResponse:
    context = {
        "targets": workbench.targets(),
        "form": form or {"port": "22"},
        "error": error,
        "question": question,
    }
    return page(request, "targets.html", context, status=status)


@pages.get("/targets", response_class=HTMLResponse)
def targets_page(request: Request, workbench: WorkbenchDep) -> HTMLResponse:
    return _targets_page(request, workbench)


@pages.post("/targets/add", response_model=None)
def add_target_form(
    request: Request,
    _: CsrfDep,
    workbench: WorkbenchDep,
    name: Annotated[str, Form()] = "",
    host: Annotated[str, Form()] = "",
    port: Annotated[str, Form()] = "22",
    user: Annotated[str, Form()] = "",
    key_file: Annotated[str, Form()] = "",
    jump_host: Annotated[str, Form()] = "",
    accept_host_key: Annotated[str, Form()] = "",
    accept_jump_host_key: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "host": host, "port": port, "user": user, "key_file": key_file,
            "jump_host": jump_host, "accept_host_key": accept_host_key,
            "accept_jump_host_key": accept_jump_host_key}  # fmt: skip
    try:
        body = TargetAdd.model_validate({k: v.strip() or None for k, v in form.items()})
        target = workbench.add_target(**body.model_dump())
    except HostKeyUnknown as error:
        return _targets_page(request, workbench, form, question=_question(error), status=409)
    except ValidationError as error:
        words = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return _targets_page(request, workbench, form, error=words, status=400)
    except WorkbenchError as error:
        return _targets_page(request, workbench, form, error=error.message, status=error.status)
    return see(f"/targets/{target.name}")


def _target_page(
    request: Request, workbench: Workbench, name: str, setup: SetupView | None = None
) -> HTMLResponse:
    return page(request, "target.html", {"t": workbench.target_view(name), "setup": setup})


@pages.get("/targets/{name}", response_class=HTMLResponse)
def target_page(request: Request, workbench: WorkbenchDep, name: str) -> HTMLResponse:
    return _target_page(request, workbench, name)


@pages.post("/targets/{name}/check", response_model=None)
def check_form(_: CsrfDep, workbench: WorkbenchDep, name: str) -> Response:
    workbench.check_target(name)
    return see(f"/targets/{name}")


@pages.post("/targets/{name}/setup", response_class=HTMLResponse)
def setup_form(request: Request, _: CsrfDep, workbench: WorkbenchDep, name: str) -> HTMLResponse:
    return _target_page(request, workbench, name, workbench.setup_target(name))


@pages.post("/targets/{name}/remove", response_model=None)
def remove_form(_: CsrfDep, workbench: WorkbenchDep, name: str) -> Response:
    workbench.remove_target(name)
    return see("/targets")


@pages.get("/models/{model_id}/fleet", response_class=HTMLResponse)
def fleet_page(request: Request, workbench: WorkbenchDep, model_id: int) -> HTMLResponse:
    return page(request, "fleet.html", {"f": workbench.fleet(model_id)})
