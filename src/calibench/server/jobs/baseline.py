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
    ctx: JobContext,
    path: Path,
    dataset: Path | None = None,
    preprocess: dict[str, Any] | None = None,
    runtime: Runtime = Runtime.ONNXRUNTIME,
) -> list[dict[str, Any]]:
    """The layer table, each layer timed by ONNX Runtime's profiler (batch 1, one thread; a
    layer fused into a neighbour has no time of its own), or by OpenVINO's counters with
    OpenVINO's runtime precision per layer. A model whose inputs have free dimensions besides
    the batch (a sequence length) is timed on the dataset's first sample."""
    from calibench.model.load import load_model
    from calibench.report.layers import layer_table, saved_reasons
    from calibench.runtime.inputs import input_specs
    from calibench.runtime.profiling import profile_layers

    proto = load_model(path)
    rows, _ = layer_table(proto, saved_reasons(proto))
    free = any(not isinstance(d, int) or d <= 0 for s in input_specs(proto) for d in s.shape[1:])
    sample = first_sample(proto, dataset, preprocess) if free and dataset is not None else None
    if runtime is Runtime.OPENVINO:
        from calibench.runtime.openvino_layers import profile_openvino, with_openvino_precisions

        with measuring(ctx):
            profile = profile_openvino(proto)
        rows = with_openvino_precisions(rows, profile.layers)
        return [{**row.to_dict(), "time_ms": profile.times.layers_ms.get(row.name)} for row in rows]
    with measuring(ctx):
        times = profile_layers(proto, sample)
    return [{**row.to_dict(), "time_ms": times.layers_ms.get(row.name)} for row in rows]


def first_sample(
    proto: Any, dataset: Path, preprocess: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The first readable sample of the dataset, as the model's inputs take it."""
    from calibench.data.open import open_for_model
    from calibench.runtime.inputs import BatchReader, input_specs

    specs = input_specs(proto)
    data, _ = open_for_model(dataset, specs, preprocess)
    reader = BatchReader(data, specs, 1)
    first = next(reader.batches(list(range(len(data)))), None)
    return first[1] if first is not None else None


def figures_text(figures: dict[str, float]) -> str:
    """``top1 92.30, top5 99.90``: a log line a person reads, not a Python dict."""
    return ", ".join(f"{name} {value:.2f}" for name, value in figures.items())


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
        figures_text(report.accuracy["figures"])
        if report.accuracy
        else "not measured (no annotations)",
        report.performance["throughput"],
    )
    ctx.progress(Stage.LAYERS, 0, 1)
    with named(ws, {model: job.name, dataset: job.dataset_name}):
        layers = layer_rows(ctx, model, dataset, job.preprocess or None, Runtime.parse(job.runtime))
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
