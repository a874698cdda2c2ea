"""The calibration job: an INT8 model calibrated from the parent project's model, its inference
on the parent's dataset and its comparison with the parent; its commit moves the model and the
report into place and fills the INT8 project."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from calibench.config import Method
from calibench.errors import CalibenchError
from calibench.progress import split_detail
from calibench.runtime.backend import Runtime
from calibench.server.db import JobRow, ModelRow, ProjectRow
from calibench.server.jobs.context import JobContext, measuring, named
from calibench.server.jobs.kinds import CALIBRATION_STAGES, CalibrationJob
from calibench.server.jobs.states import Stage
from calibench.server.workspace import Workspace
from calibench.workflow.performance import PerfSettings

if TYPE_CHECKING:
    from calibench.api import CalibrationResult

MODEL = "int8.onnx"
REPORT = "compare.html"
"""The files the job writes in its work folder, for its commit."""


def run_calibration(ctx: JobContext, job: CalibrationJob) -> dict[str, Any]:
    from calibench.report.html import write_html
    from calibench.workflow.compare import run_compare
    from calibench.workflow.infer import InferenceReport, run_inference

    ws = ctx.workspace
    parent = ws.path(job.model)
    validation = ws.path(job.validation)
    names = job.names
    preprocess = job.preprocess or None
    metric = job.metric or None

    config = job.config
    ctx.log.info(
        "calibrating %s on %s: %s method, %s preset, subset %s%s",
        names.fp32,
        names.calibration,
        config.method.value,
        config.preset.value,
        config.subset.describe(),
        f", maximum drop {config.max_drop:g} ({config.drop_type.value})"
        if config.max_drop is not None
        else "",
    )
    datasets = {ws.path(job.dataset): names.calibration, validation: names.validation}
    with named(ws, {parent: names.fp32, **datasets}):
        result = _calibrate(ctx, job, parent, validation)
    for note in result.report.notes:
        ctx.log.info("note: %s", note)
    int8 = result.save(ctx.work / MODEL)
    ctx.log.info(
        "INT8 model written: %d of %d layers in INT8",
        result.report.int8_layers,
        len(result.report.layers),
    )

    def on_inference(_: str, done: int, total: int) -> None:
        ctx.progress(Stage.INFERENCE, done, total)

    with named(ws, {parent: names.fp32, int8: names.int8, **datasets}):
        report = run_inference(
            int8,
            validation,
            metric=metric,
            perf=PerfSettings(
                batch=int(job.batch),
                streams=int(job.streams),
                seconds=job.seconds,
                runtime=Runtime.parse(job.runtime),
            ),
            preprocess=preprocess,
            workspace=ws.root,
            progress=on_inference,
            timing=measuring(ctx),
        )
    ctx.progress(Stage.COMPARISON, 0, 1)
    if job.parent_inference is None:
        raise CalibenchError("the parent project has no baseline inference to compare against")
    with named(ws, {parent: names.fp32, int8: names.int8, **datasets}), measuring(ctx):
        comparison = run_compare(
            parent,
            int8,
            InferenceReport.from_dict(job.parent_inference),
            report,
            validation,
            preprocess=preprocess,
        )
    comparison.fp32_model = names.fp32 or comparison.fp32_model
    comparison.int8_model = names.int8 or comparison.int8_model
    write_html(comparison, ctx.work / REPORT)
    ctx.progress(Stage.COMPARISON, 1, 1)
    times = {row.name: row.int8_ms for row in comparison.layers}
    layers = [{**row.to_dict(), "time_ms": times.get(row.name)} for row in result.report.layers]
    return {
        "calibration": result.report.to_dict(),
        "inference": report.to_dict(),
        "comparison": comparison.to_dict(),
        "layers": layers,
        "files": {"model": MODEL, "report": REPORT},
    }


def _calibrate(
    ctx: JobContext, job: CalibrationJob, parent: Path, validation: Path
) -> CalibrationResult:
    from calibench.api import calibrate

    own = {stage.value for stage in CALIBRATION_STAGES}

    def on_calibration(text: str, done: int, total: int) -> None:
        name, detail = split_detail(text)
        if name in own:
            ctx.progress(Stage(name), done, total, detail)
        else:  # the AccuracyAware method's steps: ranking, reverting, checking
            ctx.progress(Stage.ACCURACY_AWARE, done, total, detail)

    # Placement times what the inference will run: its batch, and one stream's threads.
    stream = PerfSettings(batch=int(job.batch), streams=int(job.streams)).resolved_threads()
    threads = job.config.placement_threads or stream
    return calibrate(
        parent,
        ctx.workspace.path(job.dataset),
        config=replace(job.config, placement_batch=int(job.batch), placement_threads=threads),
        validation=validation if job.config.method is Method.ACCURACY_AWARE else None,
        metric=job.metric or None,
        preprocess=job.preprocess or None,
        progress=on_calibration,
        timing=measuring(ctx),  # placement timing waits for another job's speed measurement
    )


def commit_calibration(
    session: Session, job: JobRow, result: dict[str, Any], ws: Workspace
) -> None:
    project = session.get(ProjectRow, job.project_id)
    assert project is not None
    model = session.get(ModelRow, project.model_id)
    assert model is not None
    work = ws.work_dir(job.id)
    target = ws.model_file(model.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / result["files"]["model"], target)
    report = ws.report_file(project.id)
    report.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / result["files"]["report"], report)
    model.path = ws.relative(target)
    model.state, model.size_bytes = "ready", target.stat().st_size
    model.layers = result["layers"]
    calibration = result["calibration"]
    model.info = {
        **(model.info or {}),
        "isa": calibration.get("isa"),
        "kernel_warnings": (calibration.get("kernel_check") or {}).get("warnings", []),
    }
    project.calibration = {**(project.calibration or {}), "report": result["calibration"]}
    project.inference = result["inference"]
    project.comparison = result["comparison"]


def abandon_calibration(session: Session, job: JobRow, ws: Workspace) -> None:
    """The job ended without a result: its model is failed, and any file a commit that did not
    finish had already moved into place is removed (the database never called it ready)."""
    project = session.get(ProjectRow, job.project_id)
    if project is None:
        return
    model = session.get(ModelRow, project.model_id)
    if model is not None and model.state in ("pending", "failed"):
        model.state = "failed"
        ws.model_file(model.id).unlink(missing_ok=True)
        ws.report_file(project.id).unlink(missing_ok=True)


def retry_calibration(session: Session, job: JobRow) -> None:
    """A calibration run again makes its model pending again."""
    project = session.get(ProjectRow, job.project_id)
    if project is not None:
        model = session.get(ModelRow, project.model_id)
        if model is not None and model.state == "failed":
            model.state = "pending"
