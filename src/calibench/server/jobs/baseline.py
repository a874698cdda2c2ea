"""The baseline job: the FP32 model's inference on the project's dataset (accuracy, speed) and
its layer table, each layer timed; its commit fills the project and the model's layer table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from calibench.runtime.backend import Runtime
from calibench.server.db import JobRow, ModelRow, ProjectRow
from calibench.server.jobs.context import JobContext, measuring, named
from calibench.server.jobs.kinds import BaselineJob
from calibench.server.jobs.states import Stage
from calibench.server.workspace import Workspace
from calibench.workflow.performance import PerfSettings


def layer_rows(
    ctx: JobContext, path: Path, runtime: Runtime = Runtime.ONNXRUNTIME
) -> list[dict[str, Any]]:
    """The layer table, each layer timed by ONNX Runtime's profiler (batch 1, one thread; a
    layer fused into a neighbour has no time of its own), or by OpenVINO's counters with
    OpenVINO's runtime precision per layer."""
    from calibench.model.load import load_model
    from calibench.report.layers import layer_table, saved_reasons
    from calibench.runtime.profiling import profile_layers

    proto = load_model(path)
    rows, _ = layer_table(proto, saved_reasons(proto))
    if runtime is Runtime.OPENVINO:
        from calibench.runtime.openvino_layers import profile_openvino, with_openvino_precisions

        with measuring(ctx):
            profile = profile_openvino(proto)
        rows = with_openvino_precisions(rows, profile.layers)
        return [{**row.to_dict(), "time_ms": profile.times.layers_ms.get(row.name)} for row in rows]
    with measuring(ctx):
        times = profile_layers(proto)
    return [{**row.to_dict(), "time_ms": times.layers_ms.get(row.name)} for row in rows]


def run_baseline(ctx: JobContext, job: BaselineJob) -> dict[str, Any]:
    from calibench.workflow.infer import run_inference

    ws = ctx.workspace
    model = ws.path(job.model)
    dataset = ws.path(job.dataset)
    with named(ws, {model: job.name, dataset: job.dataset_name}):
        report = run_inference(
            model,
            dataset,
            metric=job.metric or None,
            perf=PerfSettings(
                batch=int(job.batch),
                streams=int(job.streams),
                seconds=job.seconds,
                runtime=Runtime.parse(job.runtime),
            ),
            preprocess=job.preprocess or None,
            workspace=ws.root,
            progress=ctx.report_text,
            timing=measuring(ctx),
        )
    ctx.log.info(
        "accuracy %s; throughput %.1f samples/s",
        report.accuracy["figures"] if report.accuracy else "not measured (no annotations)",
        report.performance["throughput"],
    )
    ctx.progress(Stage.LAYERS, 0, 1)
    with named(ws, {model: job.name}):
        layers = layer_rows(ctx, model, Runtime.parse(job.runtime))
    ctx.progress(Stage.LAYERS, 1, 1)
    return {"inference": report.to_dict(), "layers": layers}


def commit_baseline(session: Session, job: JobRow, result: dict[str, Any], ws: Workspace) -> None:
    project = session.get(ProjectRow, job.project_id)
    assert project is not None
    project.inference = result["inference"]
    model = session.get(ModelRow, project.model_id)
    if model is not None and model.layers is None:
        model.layers = result["layers"]


def abandon_baseline(session: Session, job: JobRow, ws: Workspace) -> None:
    """A baseline that ended without a result leaves nothing behind: its project shows the job's
    state."""
    return None
