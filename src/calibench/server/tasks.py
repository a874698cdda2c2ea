"""The workbench's job kinds: baseline inference, calibration (INT8 model, its inference and
its comparison with the parent), and the import of a large dataset upload. Each run function
takes only its inputs (paths relative to the workspace, plain settings) and writes its files into
the job's work folder (an import: into the dataset's staging folder); its commit moves them into
place (or marks them ready) in the transaction that marks the job done."""

from __future__ import annotations

import fcntl
import os
import resource
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from calibench.config import CalibrationConfig, Method
from calibench.errors import CalibenchError, DatasetError
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.jobs import KINDS, JobContext, JobKind
from calibench.server.paths import shown, shown_in
from calibench.workflow.performance import PerfSettings

if TYPE_CHECKING:
    from calibench.api import CalibrationResult
    from calibench.data.import_result import ImportResult

BASELINE_STAGES = ["accuracy", "performance", "layers"]
DEFAULT_STAGES = ["statistics", "quantization", "bias correction", "inference", "comparison"]
ACCURACY_AWARE_STAGES = [
    "statistics",
    "quantization",
    "bias correction",
    "accuracy-aware",
    "inference",
    "comparison",
]
_CALIBRATION_STAGES = {"statistics", "quantization", "bias correction"}
IMPORT_STAGES = ["unpacking", "checking samples", "summary"]


def model_file(workspace: Path, model_id: int) -> Path:
    return workspace / "models" / str(model_id) / "model.onnx"


def report_file(workspace: Path, project_id: int) -> Path:
    return workspace / "projects" / str(project_id) / "compare.html"


@contextmanager
def measuring(ctx: JobContext) -> Iterator[None]:
    """One job at a time measures speed on this machine: jobs running side by side would skew
    each other's latency and throughput. Calibration itself runs in parallel."""
    path = ctx.workspace / "measure.lock"
    with path.open("a") as handle:
        if not _try_lock(handle):
            ctx.log.info("waiting for another job's measurement to finish")
            ctx.waiting(True)
            fcntl.flock(handle, fcntl.LOCK_EX)
            ctx.waiting(False)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_lock(handle: Any) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _named(workspace: Path, names: dict[Path, str | None]) -> Iterator[None]:
    """Errors name the models and datasets as the person named them, not by their files in the
    workspace; any other file there by its path relative to the workspace."""
    try:
        yield
    except CalibenchError as error:
        message = shown(
            str(error), workspace, {str(path): repr(name) for path, name in names.items() if name}
        )
        if message == str(error):
            raise
        raise type(error)(message) from error


def _perf(inputs: dict[str, Any]) -> PerfSettings:
    return PerfSettings(
        batch=int(inputs["batch"]), streams=int(inputs["streams"]), seconds=inputs["seconds"]
    )


def _layers(ctx: JobContext, path: Path) -> list[dict[str, Any]]:
    """The layer table, each layer timed by ONNX Runtime's profiler (batch 1, one thread; a
    layer fused into a neighbour has no time of its own)."""
    from calibench.model.load import load_model
    from calibench.report.layers import layer_table, saved_reasons
    from calibench.runtime.profiling import profile_layers

    proto = load_model(path)
    rows, _ = layer_table(proto, saved_reasons(proto))
    with measuring(ctx):
        times = profile_layers(proto)
    return [{**row.to_dict(), "time_ms": times.layers_ms.get(row.name)} for row in rows]


def run_baseline(ctx: JobContext, inputs: dict[str, Any]) -> dict[str, Any]:
    from calibench.workflow.infer import run_inference

    ws = ctx.workspace
    model = ws / inputs["model"]
    dataset = ws / inputs["dataset"]
    with _named(ws, {model: inputs.get("name"), dataset: inputs.get("dataset_name")}):
        report = run_inference(
            model,
            dataset,
            metric=inputs.get("metric") or None,
            perf=_perf(inputs),
            preprocess=inputs.get("preprocess") or None,
            workspace=ws,
            progress=ctx.progress,
            timing=measuring(ctx),
        )
    ctx.log.info(
        "accuracy %s; throughput %.1f samples/s",
        report.accuracy["figures"] if report.accuracy else "not measured (no annotations)",
        report.performance["throughput"],
    )
    ctx.progress("layers", 0, 1)
    with _named(ws, {model: inputs.get("name")}):
        layers = _layers(ctx, model)
    ctx.progress("layers", 1, 1)
    return {"inference": report.to_dict(), "layers": layers}


def commit_baseline(session: Session, job: JobRow, result: dict[str, Any], ws: Path) -> None:
    project = session.get(ProjectRow, job.project_id)
    assert project is not None
    project.inference = result["inference"]
    model = session.get(ModelRow, project.model_id)
    if model is not None and model.layers is None:
        model.layers = result["layers"]


def run_calibration(ctx: JobContext, inputs: dict[str, Any]) -> dict[str, Any]:
    from calibench.report.html import write_html
    from calibench.workflow.compare import run_compare
    from calibench.workflow.infer import InferenceReport, run_inference

    ws = ctx.workspace
    parent = ws / inputs["model"]
    validation = ws / inputs["validation"]
    config = CalibrationConfig.from_dict(inputs["config"])
    preprocess = inputs.get("preprocess") or None
    metric = inputs.get("metric") or None

    ctx.log.info("calibrating %s with %s", inputs["model"], config.to_dict())
    names = inputs.get("names") or {}
    datasets = {
        ws / inputs["dataset"]: names.get("calibration"),
        validation: names.get("validation"),
    }
    with _named(ws, {parent: names.get("fp32"), **datasets}):
        result = _calibrate(ctx, inputs, parent, validation, config, preprocess, metric)
    for note in result.report.notes:
        ctx.log.info("note: %s", note)
    int8 = result.save(ctx.work / "int8.onnx")
    ctx.log.info(
        "INT8 model written: %d of %d layers in INT8",
        result.report.int8_layers,
        len(result.report.layers),
    )

    def on_inference(_: str, done: int, total: int) -> None:
        ctx.progress("inference", done, total)

    named = {parent: names.get("fp32"), int8: names.get("int8"), **datasets}
    with _named(ws, named):
        report = run_inference(
            int8,
            validation,
            metric=metric,
            perf=_perf(inputs),
            preprocess=preprocess,
            workspace=ws,
            progress=on_inference,
            timing=measuring(ctx),
        )
    ctx.progress("comparison", 0, 1)
    with _named(ws, named), measuring(ctx):
        comparison = run_compare(
            parent,
            int8,
            InferenceReport.from_dict(inputs["parent_inference"]),
            report,
            validation,
            preprocess=preprocess,
        )
    comparison.fp32_model = names.get("fp32", comparison.fp32_model)
    comparison.int8_model = names.get("int8", comparison.int8_model)
    write_html(comparison, ctx.work / "compare.html")
    ctx.progress("comparison", 1, 1)
    times = {row.name: row.int8_ms for row in comparison.layers}
    layers = [{**row.to_dict(), "time_ms": times.get(row.name)} for row in result.report.layers]
    return {
        "calibration": result.report.to_dict(),
        "inference": report.to_dict(),
        "comparison": comparison.to_dict(),
        "layers": layers,
        "files": {"model": "int8.onnx", "report": "compare.html"},
    }


def _calibrate(
    ctx: JobContext,
    inputs: dict[str, Any],
    parent: Path,
    validation: Path,
    config: CalibrationConfig,
    preprocess: dict[str, Any] | None,
    metric: str | None,
) -> CalibrationResult:
    from calibench.api import calibrate

    def on_calibration(stage: str, done: int, total: int) -> None:
        if stage in _CALIBRATION_STAGES:
            ctx.progress(stage, done, total)
        else:  # the AccuracyAware method's steps: ranking, reverting, checking
            ctx.progress("accuracy-aware", done, total)

    return calibrate(
        parent,
        ctx.workspace / inputs["dataset"],
        config=config,
        validation=validation if config.method is Method.ACCURACY_AWARE else None,
        metric=metric,
        preprocess=preprocess,
        progress=on_calibration,
    )


def commit_calibration(session: Session, job: JobRow, result: dict[str, Any], ws: Path) -> None:
    project = session.get(ProjectRow, job.project_id)
    assert project is not None
    model = session.get(ModelRow, project.model_id)
    assert model is not None
    work = ws / "jobs" / str(job.id) / "work"
    target = model_file(ws, model.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / result["files"]["model"], target)
    report = report_file(ws, project.id)
    report.parent.mkdir(parents=True, exist_ok=True)
    os.replace(work / result["files"]["report"], report)
    model.path = str(target.relative_to(ws))
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


def abandon_calibration(session: Session, job: JobRow, ws: Path) -> None:
    """The job ended without a result: its model is failed, and any file a commit that did not
    finish had already moved into place is removed (the database never called it ready)."""
    project = session.get(ProjectRow, job.project_id)
    if project is None:
        return
    model = session.get(ModelRow, project.model_id)
    if model is not None and model.state in ("pending", "failed"):
        model.state = "failed"
        model_file(ws, model.id).unlink(missing_ok=True)
        report_file(ws, project.id).unlink(missing_ok=True)


def _nothing(session: Session, job: JobRow, ws: Path) -> None:
    return None


def retry_calibration(session: Session, job: JobRow) -> None:
    """A calibration run again makes its model pending again."""
    project = session.get(ProjectRow, job.project_id)
    if project is not None:
        model = session.get(ModelRow, project.model_id)
        if model is not None and model.state == "failed":
            model.state = "pending"


# dataset import ---------------------------------------------------------------------------------


def import_memory_limit() -> int:
    """The most memory (private data: heap and anonymous mappings) an import job's worker may
    take: a quarter of the machine's memory, at least 1 GiB. An archive or .npz that needs more
    fails in words in its worker; the server's own memory is never at stake."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 8 * 1024**3
    return max(1024**3, total // 4)


def upload_names(workspace: Path, upload: Path, filename: str) -> dict[str, str]:
    """How messages name an upload: by the name the browser gave, never by its server path."""
    return {str(upload): filename[:200], str(upload.parent): "the upload's folder"}


def import_summary(
    result: ImportResult, workspace: Path, upload: Path, filename: str, name: str, folder: str
) -> dict[str, Any]:
    """A dataset's summary as the pages show it: no server path, its uploaded file's name."""
    summary = result.summary()
    summary.pop("path", None)
    summary = shown_in(summary, workspace, upload_names(workspace, upload, filename), folder)
    summary["source"] = filename[:200]
    summary["name"] = name
    return dict(summary)


def run_import(ctx: JobContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """Unpack and check a large upload into ``datasets/<folder>`` (built in a hidden staging
    folder beside it, renamed at the end); the dataset row becomes ready at the commit."""
    from calibench.data.importer import import_dataset

    ws = ctx.workspace
    upload = ws / inputs["upload"]
    filename = str(inputs.get("filename") or "the upload")
    folder = str(inputs["folder"])
    limit = int(inputs.get("memory_limit") or import_memory_limit())
    _limit_memory(limit)
    ctx.log.info("importing %r (%d bytes) as %r", filename, upload.stat().st_size, inputs["name"])
    ctx.progress("unpacking", 0, 1)

    def on_checks(done: int, total: int) -> None:
        ctx.progress("checking samples", done, total)

    try:
        result = import_dataset(
            upload, ws / "datasets", folder, inputs.get("kind") or None, progress=on_checks
        )
    except (CalibenchError, MemoryError) as error:
        if _out_of_memory(error):
            raise DatasetError(
                f"{filename[:80]!r} could not be imported: it needs more memory than an import "
                f"may use ({limit // 1_000_000} MB, a quarter of this machine's memory); split "
                "it into smaller files, or store its arrays uncompressed (np.savez) so that they "
                "are mapped rather than loaded"
            ) from error
        names = upload_names(ws, upload, filename)
        raise DatasetError(
            f"{filename[:80]!r} could not be imported: {shown(str(error), ws, names, folder)}"
        ) from error
    ctx.progress("summary", 0, 1)
    summary = import_summary(result, ws, upload, filename, str(inputs["name"]), folder)
    ctx.log.info(
        "imported %d samples (%s, %s); %d problem(s)",
        result.samples,
        result.task.value,
        result.format,
        int((summary.get("problems") or {}).get("count") or 0),
    )
    ctx.progress("summary", 1, 1)
    return {
        "task": result.task.value,
        "format": result.format,
        "samples": result.samples,
        "summary": summary,
    }


def _out_of_memory(error: BaseException | None) -> bool:
    """Whether the error is, or was raised from, a failed allocation."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, MemoryError):
            return True
        error = error.__cause__ or error.__context__
    return False


def _limit_memory(limit: int) -> None:
    """Cap the worker's private memory (RLIMIT_DATA: heap and anonymous mappings; a memory-
    mapped file does not count), so an allocation beyond it is a MemoryError, not the machine's
    memory."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _import_row(session: Session, job: JobRow) -> DatasetRow | None:
    dataset_id = job.description.get("inputs", {}).get("dataset_id")
    return session.get(DatasetRow, dataset_id) if isinstance(dataset_id, int) else None


def _remove_upload(ws: Path, job: JobRow) -> None:
    upload = job.description.get("inputs", {}).get("upload")
    if upload:
        folder = (ws / upload).parent
        if folder.parent == ws / "uploads":
            shutil.rmtree(folder, ignore_errors=True)


def commit_import(session: Session, job: JobRow, result: dict[str, Any], ws: Path) -> None:
    dataset = _import_row(session, job)
    if dataset is None:
        raise DatasetError("the dataset being imported was deleted meanwhile")
    if not (ws / dataset.path).is_dir():
        raise DatasetError("the imported dataset's folder is missing from the workspace")
    dataset.task, dataset.format = result["task"], result["format"]
    dataset.samples, dataset.state = int(result["samples"]), "ready"
    dataset.summary = {**result["summary"], "job": job.id}
    _remove_upload(ws, job)


def abandon_import(session: Session, job: JobRow, ws: Path) -> None:
    """The import ended without a result: its dataset is failed, with the job's words; what it
    had unpacked (the staging folder, or a folder a commit that did not finish had renamed into
    place) and its upload are removed."""
    folder = str(job.description.get("inputs", {}).get("folder") or "")
    if folder:
        datasets = ws / "datasets"
        for staging in datasets.glob(f".{folder}.*.partial"):
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(datasets / folder, ignore_errors=True)
    _remove_upload(ws, job)
    dataset = _import_row(session, job)
    if dataset is not None and dataset.state != "ready":
        dataset.state = "failed"
        dataset.summary = {**(dataset.summary or {}), "error": job.message, "job": job.id}


KINDS["baseline"] = JobKind(BASELINE_STAGES, run_baseline, commit_baseline, _nothing)
KINDS["calibration"] = JobKind(
    DEFAULT_STAGES, run_calibration, commit_calibration, abandon_calibration
)
KINDS["import"] = JobKind(IMPORT_STAGES, run_import, commit_import, abandon_import)


def stages_for(kind: str, description: dict[str, Any]) -> list[str]:
    if kind == "calibration":
        method = description["inputs"]["config"].get("method")
        return ACCURACY_AWARE_STAGES if method == Method.ACCURACY_AWARE.value else DEFAULT_STAGES
    return KINDS[kind].stages
