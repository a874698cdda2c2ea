"""Models: upload (refused in words when calibration could not read it), describe, download,
delete."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import onnx
from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.errors import CalibenchError, WorkbenchError
from calibench.model.eligibility import eligibility
from calibench.model.load import load_model
from calibench.server.db import ModelRow, ProjectRow
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.disk import disk_full, disk_full_refusal
from calibench.server.web.models.schemas import ModelDetail, ModelView
from calibench.server.web.rows import (
    get_row,
    referrers,
    refuse_while_a_job_uses,
    refuse_while_used,
)
from calibench.server.web.uploads import MODEL_SUFFIXES, Upload, check_name, display_name

EXTERNAL_DATA = (
    "models with external data files cannot be uploaded; embed the weights: "
    "onnx.save(model, path, save_as_external_data=False)"
)


def get_model(session: Session, model_id: int) -> ModelRow:
    return get_row(session, ModelRow, model_id, "model")


class ModelService(WorkbenchBase):
    def add_model(self, upload: Upload, name: str | None = None) -> ModelView:
        path = self.receive(upload, MODEL_SUFFIXES, "the model")
        try:
            chosen = check_name(name or display_name(upload.filename, "model"), "model")
            try:
                shallow: onnx.ModelProto | None = onnx.load(str(path), load_external_data=False)
            except Exception:  # load_model says what is wrong with it
                shallow = None
            if shallow is not None and _external_tensors(shallow):
                raise WorkbenchError(f"{upload.filename[:80]!r} is refused: {EXTERNAL_DATA}")
            del shallow
            try:
                proto = load_model(path)
            except CalibenchError as error:
                if disk_full(error):
                    raise disk_full_refusal(self.workspace) from error
                raise WorkbenchError(
                    f"{upload.filename[:80]!r} is not a usable ONNX model: "
                    + self.shown(str(error), path, "the file")
                ) from error
            found = eligibility(proto, chosen)
            with self.sessions.begin() as session:
                row = ModelRow(
                    name=chosen,
                    path="",
                    precision=found.precision.value,
                    optimizable=found.eligible,
                    reason=found.reason,
                    size_bytes=path.stat().st_size,
                    info=model_info(proto),
                )
                session.add(row)
                session.flush()
                target = self.paths.model_file(row.id)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), target)
                row.path = self.paths.relative(target)
                return ModelView.of(row)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    def models(self, ready_only: bool = False) -> list[ModelView]:
        with self.sessions() as session:
            query = select(ModelRow).order_by(ModelRow.id)
            if ready_only:
                query = query.where(ModelRow.state == "ready")
            return [ModelView.of(m) for m in session.scalars(query)]

    def model_view(self, model_id: int) -> ModelView:
        with self.sessions() as session:
            return ModelView.of(get_model(session, model_id))

    def model_detail(self, model_id: int) -> ModelDetail:
        with self.sessions() as session:
            model = get_model(session, model_id)
            parent = get_model(session, model.parent_id) if model.parent_id else None
            return ModelDetail(
                model=ModelView.of(model),
                layers=model.layers,
                parent=ModelView.of(parent) if parent is not None else None,
            )

    def model_layers(self, model_id: int) -> list[dict[str, Any]]:
        with self.sessions() as session:
            model = get_model(session, model_id)
            _refuse_if_failed(model, "it has no layer table")
            if model.layers is None:
                raise WorkbenchError(
                    f"model {model_id}'s layer table is made by its first inference job, which "
                    "has not finished",
                    409,
                )
            return list(model.layers)

    def model_download(self, model_id: int) -> tuple[Path, str]:
        """The model's file and the name to download it as."""
        with self.sessions() as session:
            model = get_model(session, model_id)
            _refuse_if_failed(model, "there is no file")
            if model.state != "ready":
                raise WorkbenchError(
                    f"model {model_id} is {model.state}: there is no file yet", 409
                )
            path = self.paths.path(model.path)
            if not path.is_file():
                raise WorkbenchError(
                    f"the file of model {model.name!r} is missing from the workspace "
                    f"({model.path}): it was deleted outside the workbench; delete the model "
                    "and upload it again",
                    410,
                )
            return path, f"{download_name(model.name)}.onnx"

    def delete_model(self, model_id: int) -> None:
        with self.sessions.begin() as session:
            model = get_model(session, model_id)
            refuse_while_a_job_uses(session, model.path, f"model {model.name!r}")
            refuse_while_used(
                referrers(session, ProjectRow.model_id, model_id),
                f"model {model.name!r} is used by",
                "project",
            )
            refuse_while_used(
                referrers(session, ModelRow.parent_id, model_id),
                f"{model.name!r} was calibrated into",
                "INT8 model",
            )
            session.delete(model)
        shutil.rmtree(self.paths.model_dir(model_id), ignore_errors=True)


def download_name(name: str) -> str:
    """A model's name as a file name every browser keeps as it is: an INT8 model's name says
    ``(Default, performance, 50% of …)``, whose brackets, commas and % a download would quote."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_") or "model"


def _refuse_if_failed(model: ModelRow, so: str) -> None:
    """An INT8 model whose calibration failed or was cancelled was never made."""
    if model.state == "failed":
        raise WorkbenchError(
            f"model {model.id} was not made (its calibration job failed or was cancelled): {so}",
            409,
        )


def _external_tensors(proto: onnx.ModelProto) -> bool:
    """Whether any tensor of the model keeps its data in another file."""

    def graph_has(graph: onnx.GraphProto) -> bool:
        tensors = [*graph.initializer]
        for sparse in graph.sparse_initializer:
            tensors += [sparse.values, sparse.indices]
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors):
            return True
        for node in graph.node:
            for attribute in node.attribute:
                inner = [attribute.t, *attribute.tensors]
                if any(t.data_location == onnx.TensorProto.EXTERNAL for t in inner):
                    return True
                subgraphs = [attribute.g, *attribute.graphs]
                if any(graph_has(g) for g in subgraphs if g.ByteSize()):
                    return True
        return False

    return graph_has(proto.graph)


def model_info(proto: onnx.ModelProto) -> dict[str, Any]:
    def shape(value: onnx.ValueInfoProto) -> list[Any]:
        dims = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]

    initializers = {t.name for t in proto.graph.initializer}
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {
        "inputs": [
            {"name": v.name, "shape": shape(v)}
            for v in proto.graph.input
            if v.name not in initializers
        ],
        "outputs": [{"name": v.name, "shape": shape(v)} for v in proto.graph.output],
        "opset": next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None),
        "nodes": len(proto.graph.node),
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
    }
