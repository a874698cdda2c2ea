"""What the pages and the JSON API do, written once: register models and datasets, create
projects, start, cancel and retry jobs, and describe all of them as plain dicts."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import onnx
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from calibench.config import CalibrationConfig, DropType, Method, Preset, Subset
from calibench.data.archive import is_archive
from calibench.data.import_result import FORMAT_NAMES
from calibench.data.importer import KINDS as DATASET_KINDS
from calibench.data.importer import import_dataset
from calibench.data.preprocess import Preprocess
from calibench.errors import CalibenchError, NotEligibleError
from calibench.metrics.detection.decoders import DECODERS
from calibench.model.eligibility import check_eligible
from calibench.model.load import DERIVED_KEY, load_model
from calibench.server.db import DatasetRow, JobRow, ModelRow, ProjectRow
from calibench.server.jobs.dataset_import import import_memory_limit, import_summary
from calibench.server.jobs.lifecycle import queue_job, request_cancel, requeue
from calibench.server.jobs.registry import describe
from calibench.server.jobs.workspace import Workspace
from calibench.server.paths import shown

THIS_MACHINE = "this machine"
MODEL_SUFFIXES = (".onnx",)
DATASET_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".npz")
NAME = re.compile(r"^[\w][\w .()+-]{0,99}$")
MAX_ID = 2**31 - 1
"""The largest id a row can have (PostgreSQL's INTEGER); a larger one names no row."""
LIVE = ("queued", "running")
IMPORT_JOB_BYTES = 64_000_000
"""Default threshold above which a dataset upload (its bytes, or what its headers say it unpacks
to) is imported by a job rather than inside the request."""
EXTERNAL_DATA = (
    "models with external data files cannot be uploaded; embed the weights: "
    "onnx.save(model, path, save_as_external_data=False)"
)
LEFTOVERS = (("uploads", "upload-*"), ("datasets", ".ds-*.partial"))
"""What a killed server can leave behind: uploads being received, datasets being imported."""
PRESET_HELP = {
    "performance": "symmetric activations: the fastest INT8 kernels (the default)",
    "mixed": "asymmetric activations: more accurate for activations that are not centred on "
    "zero (e.g. after SiLU or without ReLU), slightly slower",
}


class WorkbenchError(Exception):
    """A request the workbench refuses, with the words to show and the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Upload:
    """An uploaded file: its stream and the name the browser gave (used for display only)."""

    stream: BinaryIO
    filename: str


def display_name(filename: str, fallback: str) -> str:
    """A name to show, from an uploaded file's name: never used as a path."""
    base = re.split(r"[\\/]", filename or "")[-1]
    for suffix in (*DATASET_SUFFIXES, *MODEL_SUFFIXES):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    base = re.sub(r"[^\w .()+-]", "_", base).strip(" ._")[:100]
    return base or fallback


def check_name(name: str, what: str) -> str:
    name = name.strip()
    if not NAME.match(name):
        raise WorkbenchError(
            f"{what} name {name[:60]!r} is not allowed: use 1–100 letters, digits, spaces, "
            "'.', '-', '_', '(', ')' or '+', starting with a letter or digit"
        )
    return name


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_WORDS = ("database or disk is full", "no space left on device", "disk quota exceeded")
DISK_FULL_SQLSTATE = "53100"
"""PostgreSQL's disk_full."""


def disk_full(error: BaseException | None) -> bool:
    """Whether the error, or one it was raised from, is a full disk (a file write, SQLite's or
    PostgreSQL's)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        original = error.orig if isinstance(error, DBAPIError) else error
        if getattr(original, "sqlstate", None) == DISK_FULL_SQLSTATE:
            return True
        if any(words in str(original).lower() for words in DISK_FULL_WORDS):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_refusal(workspace: Path) -> WorkbenchError:
    try:
        free = f"{shutil.disk_usage(workspace).free // 1_000_000} MB free"
    except OSError:
        free = "free space unknown"
    return WorkbenchError(f"the workspace disk is full ({free})", 507)


def _write_chunk(out: BinaryIO, chunk: bytes) -> None:
    out.write(chunk)


def check_finite(value: Any, what: str) -> None:
    """Refuse NaN and infinities anywhere in a number, a list or a dict (JSON allows them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise WorkbenchError(f"{what} must be a finite number, not {value}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{what}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_finite(item, what)


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


class Workbench:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        workspace: Path,
        max_upload_bytes: int,
        perf_seconds: float = 3.0,
        import_job_bytes: int = IMPORT_JOB_BYTES,
        import_memory_bytes: int | None = None,
    ) -> None:
        self.sessions = sessions
        self.workspace = workspace
        self.max_upload_bytes = max_upload_bytes
        self.perf_seconds = perf_seconds
        self.import_job_bytes = import_job_bytes
        """Uploads above this (or unpacking to more) are imported by a job."""
        self.import_memory_bytes = import_memory_bytes or import_memory_limit()
        """The most private memory an import job's worker may take."""
        for folder in ("models", "datasets", "projects", "jobs", "uploads"):
            (workspace / folder).mkdir(parents=True, exist_ok=True)

    # uploads --------------------------------------------------------------------------------

    def _receive(self, upload: Upload, suffixes: tuple[str, ...], what: str) -> Path:
        """Copy an upload to a private temporary file, checking its type and size."""
        lower = (upload.filename or "").lower()
        suffix = next((s for s in suffixes if lower.endswith(s)), None)
        if suffix is None:
            raise WorkbenchError(
                f"{what} must be a {', '.join(suffixes)} file, not {upload.filename[:80]!r}", 415
            )
        folder = Path(tempfile.mkdtemp(prefix="upload-", dir=self.workspace / "uploads"))
        path = folder / f"upload{suffix}"
        size = 0
        try:
            with path.open("wb") as out:
                while chunk := upload.stream.read(1 << 20):
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise WorkbenchError(
                            f"{what} is larger than the upload limit of "
                            f"{self.max_upload_bytes / 1e6:g} MB (start the server with "
                            "--max-upload-mb to change it)",
                            413,
                        )
                    _write_chunk(out, chunk)
            if size == 0:
                raise WorkbenchError(f"{what} is empty")
        except BaseException:  # a full disk, a refusal, a broken connection: nothing stays
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return path

    def _shown(self, text: str, upload: Path, called: str, dataset: str | None = None) -> str:
        """An error's words for the person who uploaded: the upload ``called`` so, no server
        path."""
        names = {str(upload): called, str(upload.parent): "the upload's folder"}
        return shown(text, self.workspace, names, dataset)

    def sweep_leftovers(self, before: float) -> list[Path]:
        """Remove what a killed server left: uploads being received and datasets being
        imported, untouched since ``before`` (this server's start), that no live job names."""
        with self.sessions() as session:
            live = [
                json.dumps(d)
                for d in session.scalars(select(JobRow.description).where(JobRow.state.in_(LIVE)))
            ]
        removed = []
        for folder, pattern in LEFTOVERS:
            for path in sorted((self.workspace / folder).glob(pattern)):
                try:
                    if any(path.name in text for text in live) or _newest(path) >= before:
                        continue
                except OSError:  # gone meanwhile, or unreadable: not ours to judge
                    continue
                shutil.rmtree(path, ignore_errors=True)
                if not path.exists():
                    removed.append(path)
        return removed

    # models -----------------------------------------------------------------------------------

    def add_model(self, upload: Upload, name: str | None = None) -> dict[str, Any]:
        path = self._receive(upload, MODEL_SUFFIXES, "the model")
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
                    + self._shown(str(error), path, "the file")
                ) from error
            precision, optimizable, reason = model_precision(proto, chosen)
            with self.sessions.begin() as session:
                row = ModelRow(
                    name=chosen,
                    path="",
                    precision=precision,
                    optimizable=optimizable,
                    reason=reason,
                    size_bytes=path.stat().st_size,
                    info=model_info(proto),
                )
                session.add(row)
                session.flush()
                target = Workspace(self.workspace).model_file(row.id)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), target)
                row.path = str(target.relative_to(self.workspace))
                return model_view(row)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    def model(self, session: Session, model_id: int) -> ModelRow:
        return _row(session, ModelRow, model_id, "model")

    # datasets ---------------------------------------------------------------------------------

    def add_dataset(
        self, upload: Upload, name: str | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """Import a dataset upload. A small one is unpacked and checked here and its dataset is
        returned ready; a large one (see :meth:`imports_as_job`) is handed to an ``import`` job:
        its dataset is returned ``importing``, with the job under ``"job"``."""
        if kind and kind not in DATASET_KINDS:
            raise WorkbenchError(
                f"unknown dataset type {kind[:40]!r}; choose one of {', '.join(DATASET_KINDS)}"
            )
        path = self._receive(upload, DATASET_SUFFIXES, "the dataset")
        handed_over = False
        try:
            chosen = check_name(name or display_name(upload.filename, "dataset"), "dataset")
            self._refuse_taken(chosen)
            if not (is_archive(path) or path.suffix == ".npz"):
                raise WorkbenchError("the dataset must be an archive or an .npz file", 415)
            folder = f"ds-{uuid.uuid4().hex[:12]}"
            if self.imports_as_job(path):
                view = self._queue_import(path, upload.filename, chosen, folder, kind)
                handed_over = True
                return view
            try:
                result = import_dataset(path, self.workspace / "datasets", folder, kind or None)
            except CalibenchError as error:
                if disk_full(error):
                    raise disk_full_refusal(self.workspace) from error
                raise WorkbenchError(
                    f"{upload.filename[:80]!r} could not be imported: "
                    + self._shown(str(error), path, "the upload", folder)
                ) from error
            summary = import_summary(result, self.workspace, path, upload.filename, chosen, folder)
            try:
                with self.sessions.begin() as session:
                    row = DatasetRow(
                        name=chosen,
                        path=f"datasets/{folder}",
                        task=result.task.value,
                        format=result.format,
                        samples=result.samples,
                        summary=summary,
                        state="ready",
                    )
                    session.add(row)
                    session.flush()
                    return dataset_view(row)
            except IntegrityError as error:  # another upload took the name meanwhile
                shutil.rmtree(result.path, ignore_errors=True)
                raise WorkbenchError(f"a dataset named {chosen!r} exists already", 409) from error
        finally:
            if not handed_over:
                shutil.rmtree(path.parent, ignore_errors=True)

    def _refuse_taken(self, name: str) -> None:
        with self.sessions() as session:
            taken = session.scalars(select(DatasetRow).where(DatasetRow.name == name)).first()
        if taken is None:
            return
        why = {
            "importing": " (its import is still running)",
            "failed": " (its import failed; delete it to reuse the name)",
        }.get(taken.state, "")
        raise WorkbenchError(f"a dataset named {name!r} exists already{why}", 409)

    def imports_as_job(self, upload: Path) -> bool:
        """Whether an upload is imported by a job: when it is larger than ``import_job_bytes``,
        or its archive's headers say it unpacks to more (zip and .npz: the members' declared
        sizes; gzip: its trailer's size). Those take long, and unpacking or loading them must
        not hold the request nor the server's memory; small ones are ready at once."""
        size = upload.stat().st_size
        return max(size, _declared_bytes(upload)) > self.import_job_bytes

    def _queue_import(
        self, upload: Path, filename: str, name: str, folder: str, kind: str | None
    ) -> dict[str, Any]:
        inputs = {
            "upload": str(upload.relative_to(self.workspace)),
            "filename": filename[:200],
            "name": name,
            "kind": kind or None,
            "folder": folder,
            "dataset": f"datasets/{folder}",
            "memory_limit": self.import_memory_bytes,
        }
        try:
            with self.sessions.begin() as session:
                row = DatasetRow(
                    name=name,
                    path=f"datasets/{folder}",
                    task="",
                    format="",
                    samples=0,
                    summary={"source": filename[:200], "name": name},
                    state="importing",
                )
                session.add(row)
                session.flush()
                job = self._queue(session, None, "import", {**inputs, "dataset_id": row.id})
                row.summary = {**row.summary, "job": job.id}
                return {**dataset_view(row), "job": job_view(job)}
        except IntegrityError as error:  # another upload took the name meanwhile
            raise WorkbenchError(f"a dataset named {name!r} exists already", 409) from error

    def dataset(self, session: Session, dataset_id: int) -> DatasetRow:
        return _row(session, DatasetRow, dataset_id, "dataset")

    def ready_dataset(self, session: Session, dataset_id: int) -> DatasetRow:
        """A dataset jobs can read: refused in words (409) while it is imported or when its
        import failed."""
        dataset = self.dataset(session, dataset_id)
        refusal = not_ready(dataset)
        if refusal is not None:
            raise WorkbenchError(refusal, 409)
        return dataset

    # projects ---------------------------------------------------------------------------------

    def create_project(
        self,
        model_id: int,
        dataset_id: int,
        batch: int = 1,
        streams: int = 1,
        preprocess: dict[str, Any] | None = None,
        metric: str | None = None,
    ) -> dict[str, Any]:
        settings = inference_settings(batch, streams)
        metric = check_metric(metric)
        check_finite(preprocess, "preprocess")
        if preprocess:
            try:
                Preprocess(**preprocess)
            except (TypeError, ValueError, CalibenchError) as error:
                raise WorkbenchError(f"invalid preprocessing: {error}") from error
        with self.sessions.begin() as session:
            model = self.model(session, model_id)
            dataset = self.ready_dataset(session, dataset_id)
            metric_fits(metric, dataset)
            if model.state != "ready":
                raise WorkbenchError(f"model {model.name!r} is not ready ({model.state})", 409)
            project = ProjectRow(
                model_id=model.id,
                dataset_id=dataset.id,
                target=THIS_MACHINE,
                settings={**settings, "preprocess": preprocess or None, "metric": metric or None},
            )
            session.add(project)
            session.flush()
            self._queue(
                session,
                project,
                "baseline",
                {
                    "model": model.path,
                    "name": model.name,
                    "dataset": dataset.path,
                    "dataset_name": dataset.name,
                    **settings,
                    "seconds": self.perf_seconds,
                    "preprocess": preprocess or None,
                    "metric": metric or None,
                },
            )
            return self.project_view(session, project)

    def project(self, session: Session, project_id: int) -> ProjectRow:
        return _row(session, ProjectRow, project_id, "project")

    def optimize_options(self, session: Session, project: ProjectRow) -> dict[str, Any]:
        """Whether the project's model can be calibrated now, and if not, why."""
        model = self.model(session, project.model_id)
        job = latest_job(session, project.id)
        if not model.optimizable:
            return {"enabled": False, "reason": model.reason or "this model cannot be calibrated"}
        if job is None or job.kind != "baseline" or job.state != "done":
            state = "has not finished" if job is None or not job.finished else job.state
            return {
                "enabled": False,
                "reason": f"the baseline inference {state}; INT8 calibration compares against "
                "it, so it must finish first",
            }
        return {"enabled": True, "reason": None}

    @staticmethod
    def accuracy_aware_refusal(validation: DatasetRow) -> str | None:
        """Why AccuracyAware is not available on a project with this dataset (None: it is)."""
        if validation.annotated:
            return None
        return (
            f"AccuracyAware measures accuracy on the project's dataset, {validation.name!r}, "
            "which has no annotations; use Default, or create the project on an annotated dataset"
        )

    def optimize(
        self,
        project_id: int,
        dataset_id: int,
        subset_percent: float = 100,
        method: str = "default",
        max_drop: float | None = None,
        preset: str = "performance",
        batch: int | None = None,
        streams: int | None = None,
        drop_type: str = "absolute",
        keep_fp32: list[str] | None = None,
    ) -> dict[str, Any]:
        if drop_type not in {d.value for d in DropType}:
            raise WorkbenchError(f"unknown drop type {drop_type[:40]!r}: use absolute or relative")
        if method not in {m.value for m in Method}:
            raise WorkbenchError(f"unknown method {method[:40]!r}: use default or accuracy-aware")
        if preset not in {p.value for p in Preset}:
            raise WorkbenchError(f"unknown preset {preset[:40]!r}: use performance or mixed")
        check_finite(subset_percent, "subset_percent")
        check_finite(max_drop, "max_drop")
        if not 0 < subset_percent <= 100:
            raise WorkbenchError("the subset size must be a percentage above 0 and at most 100")
        with self.sessions.begin() as session:
            parent = self.project(session, project_id)
            calibration = self.ready_dataset(session, dataset_id)
            options = self.optimize_options(session, parent)
            if not options["enabled"]:
                raise WorkbenchError(f"INT8 calibration is not available: {options['reason']}", 409)
            model = self.model(session, parent.model_id)
            validation = self.dataset(session, parent.dataset_id)
            if method == Method.ACCURACY_AWARE.value:
                refusal = self.accuracy_aware_refusal(validation)
                if refusal is not None:
                    raise WorkbenchError(refusal)
                if max_drop is None:
                    raise WorkbenchError("the AccuracyAware method needs a Maximum Accuracy Drop")
            try:
                config = CalibrationConfig(
                    preset=Preset(preset),
                    subset=Subset.parse(f"{subset_percent:g}%"),
                    method=Method(method),
                    max_drop=max_drop if method == Method.ACCURACY_AWARE.value else None,
                    drop_type=DropType(drop_type),
                    keep_fp32=tuple(keep_fp32 or ()),
                )
            except CalibenchError as error:
                raise WorkbenchError(str(error)) from error
            settings = inference_settings(
                parent.settings.get("batch", 1) if batch is None else batch,
                parent.settings.get("streams", 1) if streams is None else streams,
            )
            child_name = self._unique_model_name(
                session,
                f"{model.name} INT8"
                + (" AccuracyAware" if method == Method.ACCURACY_AWARE.value else "")
                + (" mixed" if preset == Preset.MIXED.value else ""),
            )
            child_model = ModelRow(
                name=child_name,
                path="",
                state="pending",
                precision="INT8",
                parent_id=model.id,
                optimizable=False,
                reason=f"{child_name} is an optimized model derived from {model.name}: "
                "only an original FP32 model can be calibrated",
                size_bytes=0,
                info=model.info,
            )
            session.add(child_model)
            session.flush()
            preprocess = parent.settings.get("preprocess")
            metric = parent.settings.get("metric")
            child = ProjectRow(
                model_id=child_model.id,
                dataset_id=parent.dataset_id,
                target=parent.target,
                parent_id=parent.id,
                settings={**settings, "preprocess": preprocess, "metric": metric},
                calibration={
                    "config": config.to_dict(),
                    "dataset": {"id": calibration.id, "name": calibration.name},
                    "validation": {"id": validation.id, "name": validation.name},
                },
            )
            session.add(child)
            session.flush()
            self._queue(
                session,
                child,
                "calibration",
                {
                    "model": model.path,
                    "dataset": calibration.path,
                    "validation": validation.path,
                    "config": config.to_dict(),
                    **settings,
                    "seconds": self.perf_seconds,
                    "preprocess": preprocess,
                    "metric": metric,
                    "parent_inference": parent.inference,
                    "names": {
                        "fp32": model.name,
                        "int8": child_name,
                        "calibration": calibration.name,
                        "validation": validation.name,
                    },
                },
            )
            return self.project_view(session, child)

    @staticmethod
    def _unique_model_name(session: Session, name: str) -> str:
        taken = set(session.scalars(select(ModelRow.name).where(ModelRow.name.like(f"{name}%"))))
        if name not in taken:
            return name
        n = 2
        while f"{name} ({n})" in taken:
            n += 1
        return f"{name} ({n})"

    def _queue(
        self, session: Session, project: ProjectRow | None, kind: str, inputs: dict[str, Any]
    ) -> JobRow:
        project_id = project.id if project is not None else None
        return queue_job(session, project_id, describe(kind, inputs))

    # jobs -------------------------------------------------------------------------------------

    def job(self, session: Session, job_id: int) -> JobRow:
        return _row(session, JobRow, job_id, "job")

    def cancel(self, job_id: int) -> dict[str, Any]:
        with self.sessions.begin() as session:
            job = self.job(session, job_id)
            if job.finished:
                raise WorkbenchError(
                    f"job {job_id} has ended ({job.state}): nothing to cancel", 409
                )
            request_cancel(session, job, Workspace(self.workspace))
            return job_view(job)

    def retry(self, job_id: int) -> dict[str, Any]:
        with self.sessions.begin() as session:
            job = self.job(session, job_id)
            if job.state not in ("failed", "cancelled"):
                raise WorkbenchError(
                    f"job {job_id} is {job.state}: only a failed or cancelled job can be retried",
                    409,
                )
            if job.kind == "import":
                raise WorkbenchError(
                    f"job {job_id} imported an upload that was removed when it "
                    f"{job.state}: delete its dataset and import the file again",
                    409,
                )
            requeue(session, job)
            return job_view(job)

    # deleting ---------------------------------------------------------------------------------

    def delete_project(self, project_id: int) -> None:
        """Delete a project, its jobs and their logs; an INT8 project takes its model along."""
        with self.sessions.begin() as session:
            project = self.project(session, project_id)
            _refuse_while_used(
                _referrers(session, ProjectRow.parent_id, project_id),
                f"project {project_id} has INT8 projects made from it",
            )
            jobs = session.scalars(select(JobRow).where(JobRow.project_id == project_id)).all()
            busy = [j.id for j in jobs if not j.finished]
            if busy:
                raise WorkbenchError(
                    f"project {project_id}'s job {busy[0]} has not ended: cancel it first", 409
                )
            model = self.model(session, project.model_id)
            for job in jobs:
                session.delete(job)
            session.flush()
            session.delete(project)
            session.flush()
            others = session.scalar(select(func.count()).where(ProjectRow.model_id == model.id))
            drop_model = model.parent_id is not None and not others
            if drop_model:
                session.delete(model)
            job_ids = [j.id for j in jobs]
        for job_id in job_ids:
            shutil.rmtree(self.workspace / "jobs" / str(job_id), ignore_errors=True)
        shutil.rmtree(self.workspace / "projects" / str(project_id), ignore_errors=True)
        if drop_model:
            shutil.rmtree(Workspace(self.workspace).model_dir(model.id), ignore_errors=True)

    def delete_dataset(self, dataset_id: int) -> None:
        with self.sessions.begin() as session:
            dataset = self.dataset(session, dataset_id)
            _refuse_while_a_job_uses(session, dataset.path, f"dataset {dataset.name!r}")
            _refuse_while_used(
                _referrers(session, ProjectRow.dataset_id, dataset_id),
                f"dataset {dataset.name!r} is used by project(s)",
            )
            calibrated = _calibrated_with(session, dataset_id)
            if calibrated:
                raise WorkbenchError(
                    f"dataset {dataset.name!r} is the calibration dataset of project "
                    f"{', '.join(map(str, calibrated))} (Retry calibrates with it again): "
                    "delete that project first",
                    409,
                )
            folder = self.workspace / dataset.path
            session.delete(dataset)
        shutil.rmtree(folder, ignore_errors=True)

    def delete_model(self, model_id: int) -> None:
        with self.sessions.begin() as session:
            model = self.model(session, model_id)
            _refuse_while_a_job_uses(session, model.path, f"model {model.name!r}")
            _refuse_while_used(
                _referrers(session, ProjectRow.model_id, model_id),
                f"model {model.name!r} is used by project(s)",
            )
            _refuse_while_used(
                _referrers(session, ModelRow.parent_id, model_id),
                f"INT8 models were made from {model.name!r}",
            )
            session.delete(model)
        shutil.rmtree(Workspace(self.workspace).model_dir(model_id), ignore_errors=True)

    def job_log(self, job_id: int) -> str:
        with self.sessions() as session:
            self.job(session, job_id)
        path = Workspace(self.workspace).log_path(job_id)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    # views ------------------------------------------------------------------------------------

    def project_view(self, session: Session, project: ProjectRow) -> dict[str, Any]:
        model = self.model(session, project.model_id)
        dataset = self.dataset(session, project.dataset_id)
        job = latest_job(session, project.id)
        inference = project.inference or {}
        accuracy = inference.get("accuracy") or None
        perf = inference.get("performance") or {}
        children = session.scalars(
            select(ProjectRow.id).where(ProjectRow.parent_id == project.id)
        ).all()
        return {
            "id": project.id,
            "name": f"{model.name} × {dataset.name} × {project.target}",
            "model": model_view(model),
            "dataset": dataset_view(dataset),
            "target": project.target,
            "precision": model.precision,
            "parent_id": project.parent_id,
            "children": list(children),
            "settings": project.settings,
            "status": job.state if job else "new",
            "job": job_view(job) if job else None,
            "accuracy": None
            if not accuracy
            else {"metric": accuracy["metric"], "figures": accuracy["figures"]},
            "throughput": perf.get("throughput"),
            "latency_ms": perf.get("latency_ms_median"),
            "inference": project.inference,
            "calibration": project.calibration,
            "has_comparison": project.comparison is not None,
            "optimize": self.optimize_options(session, project),
            "created_at": _iso(project.created_at),
        }

    def projects(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            family = func.coalesce(ProjectRow.parent_id, ProjectRow.id)
            rows = session.scalars(select(ProjectRow).order_by(family, ProjectRow.id)).all()
            return [self.project_view(session, p) for p in rows]

    def comparison(self, project_id: int) -> tuple[dict[str, Any], Path]:
        with self.sessions() as session:
            project = self.project(session, project_id)
            if project.parent_id is None:
                raise WorkbenchError(
                    f"project {project_id} holds an original model: compare one of its INT8 "
                    "projects with it",
                    404,
                )
            if project.comparison is None:
                job = latest_job(session, project.id)
                state = job.state if job else "new"
                why = (
                    "its calibration job has not finished"
                    if state in ("queued", "running")
                    else f"its calibration job {state}; retry it from the project's page"
                )
                raise WorkbenchError(f"project {project_id} has no comparison: {why}", 409)
            return project.comparison, Workspace(self.workspace).report_file(project.id)


RowT = TypeVar("RowT", ModelRow, DatasetRow, ProjectRow, JobRow)


def not_ready(dataset: DatasetRow) -> str | None:
    """Why jobs cannot use this dataset yet (None: they can)."""
    job = (dataset.summary or {}).get("job")
    if dataset.state == "importing":
        return (
            f"dataset {dataset.name!r} is still being imported (job {job}); use it once that "
            "job is done"
        )
    if dataset.state == "failed":
        error = (dataset.summary or {}).get("error") or "no reason was recorded"
        return (
            f"dataset {dataset.name!r} was not imported (job {job}: {error}); delete it and "
            "import the file again"
        )
    return None


def _declared_bytes(path: Path) -> int:
    """What an upload says it unpacks to, from its headers alone (0 when it says nothing or
    cannot be read: the import itself then explains what is wrong with it)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return sum(max(0, info.file_size) for info in archive.infolist())
        lower = path.name.lower()
        if lower.endswith((".tar.gz", ".tgz")):
            with path.open("rb") as handle:  # gzip's trailer: the size modulo 2**32, a hint
                handle.seek(-4, os.SEEK_END)
                return int.from_bytes(handle.read(4), "little")
        if lower.endswith(".tar") and tarfile.is_tarfile(path):
            return path.stat().st_size
    except (OSError, ValueError, zipfile.BadZipFile, tarfile.TarError, EOFError):
        return 0
    return 0


def _row(session: Session, table: type[RowT], row_id: int, what: str) -> RowT:
    row = session.get(table, row_id) if 0 < row_id <= MAX_ID else None
    if row is None:
        raise WorkbenchError(f"there is no {what} {row_id}", 404)
    return row


def _newest(path: Path) -> float:
    """The latest modification time of a folder or of anything in it."""
    newest = path.lstat().st_mtime
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
            except OSError:
                continue
    return newest


def _names_path(value: Any, path: str) -> bool:
    """Whether a job description names ``path`` (relative to the workspace) or a file in it."""
    if isinstance(value, str):
        return value == path or value.startswith(path.rstrip("/") + "/")
    if isinstance(value, dict):
        return any(_names_path(v, path) for v in value.values())
    if isinstance(value, list):
        return any(_names_path(v, path) for v in value)
    return False


def _refuse_while_a_job_uses(session: Session, path: str, what: str) -> None:
    """A queued or running job reads its inputs by path: they stay until it has ended."""
    if not path:
        return
    jobs = session.scalars(select(JobRow).where(JobRow.state.in_(LIVE)).order_by(JobRow.id))
    for job in jobs:
        if _names_path(job.description, path):
            raise WorkbenchError(
                f"{what} is used by job {job.id} ({job.state}): wait for it to end or cancel "
                "it first",
                409,
            )


def _calibrated_with(session: Session, dataset_id: int) -> list[int]:
    """The INT8 projects whose calibration dataset this is (a Retry calibrates with it again)."""
    rows = session.scalars(select(ProjectRow).where(ProjectRow.calibration.is_not(None)))
    return [
        p.id for p in rows if ((p.calibration or {}).get("dataset") or {}).get("id") == dataset_id
    ]


def _referrers(session: Session, column: Any, row_id: int) -> list[int]:
    """The ids of the rows whose ``column`` points at ``row_id``."""
    return list(session.scalars(select(column.class_.id).where(column == row_id)))


def _refuse_while_used(users: list[int], what: str) -> None:
    if users:
        raise WorkbenchError(f"{what} ({', '.join(map(str, users))}): delete them first", 409)


def latest_job(session: Session, project_id: int) -> JobRow | None:
    return session.scalars(
        select(JobRow).where(JobRow.project_id == project_id).order_by(JobRow.id.desc()).limit(1)
    ).first()


METRICS = ("topk", *(f"map:{name}" for name in DECODERS))
"""What the workbench accepts as a metric: built-in ones only (a custom metric is code, and the
server never runs code a client names)."""


def check_metric(metric: str | None) -> str | None:
    if metric is None or not metric.strip():
        return None
    chosen = metric.strip().lower()
    if chosen in ("top1", "top5", "accuracy"):  # the figures' names, and the CLI's alias
        chosen = "topk"
    if chosen not in METRICS:
        raise WorkbenchError(
            f"unknown metric {metric[:60]!r}: choose {', '.join(METRICS)} (or none, for the "
            "dataset's default); custom metrics are for the command line and the Python API"
        )
    return chosen


def metric_fits(metric: str | None, dataset: DatasetRow) -> None:
    """Refuse, before any job runs, a metric the dataset cannot be scored with."""
    if dataset.task == "detection" and not (metric or "").startswith("map:"):
        raise WorkbenchError(
            f"{dataset.name!r} is a detection dataset: choose its metric, mAP with the model's "
            f"output decoder ({', '.join(m for m in METRICS if m.startswith('map:'))})"
        )
    if dataset.task != "detection" and (metric or "").startswith("map:"):
        raise WorkbenchError(f"mAP needs a detection dataset; {dataset.name!r} is {dataset.task}")


def inference_settings(batch: int, streams: int) -> dict[str, int]:
    try:
        batch, streams = int(batch), int(streams)
    except (TypeError, ValueError) as error:
        raise WorkbenchError("batch size and streams must be whole numbers") from error
    if not 1 <= batch <= 1024:
        raise WorkbenchError("the batch size must be between 1 and 1024")
    if not 1 <= streams <= 64:
        raise WorkbenchError("the number of parallel streams must be between 1 and 64")
    return {"batch": batch, "streams": streams}


def model_precision(proto: onnx.ModelProto, name: str) -> tuple[str, bool, str | None]:
    """(precision, can be calibrated, why not)."""
    try:
        check_eligible(proto, name)
    except NotEligibleError as error:
        meta = {p.key for p in proto.metadata_props}
        ops = {n.op_type for n in proto.graph.node}
        quantized = "QuantizeLinear" in ops or any(o.startswith("QLinear") for o in ops)
        if DERIVED_KEY in meta or quantized:
            precision = "INT8"
        elif "FP16" in str(error) or "FLOAT16" in str(error):
            precision = "FP16"
        else:
            precision = "FP32"
        return precision, False, str(error)
    return "FP32", True, None


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


def _iso(moment: datetime | None) -> str | None:
    """UTC times as ISO text (SQLite hands them back without their zone)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.isoformat(timespec="seconds")


def model_view(row: ModelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "state": row.state,
        "precision": row.precision,
        "parent_id": row.parent_id,
        "optimizable": row.optimizable,
        "reason": row.reason,
        "size_bytes": row.size_bytes,
        "info": row.info,
        "created_at": _iso(row.created_at),
    }


def dataset_view(row: DatasetRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "task": row.task,
        "annotated": row.annotated,
        "format": row.format,
        "format_name": FORMAT_NAMES.get(row.format, row.format),
        "samples": row.samples,
        "summary": row.summary,
        "state": row.state,
        "job_id": (row.summary or {}).get("job"),
        "error": (row.summary or {}).get("error") if row.state == "failed" else None,
        "created_at": _iso(row.created_at),
    }


def job_view(row: JobRow) -> dict[str, Any]:
    stages = []
    for stage in row.stages or []:
        total = stage.get("total") or 0
        fraction = (stage.get("done", 0) / total) if total else 0.0
        stages.append({**stage, "percent": round(100 * min(1.0, fraction))})
    overall = (
        100
        if row.state == "done"
        else round(sum(s["percent"] for s in stages) / len(stages))
        if stages
        else 0
    )
    return {
        "id": row.id,
        "project_id": row.project_id,
        "dataset_id": (row.description or {}).get("inputs", {}).get("dataset_id")
        if row.kind == "import"
        else None,
        "kind": row.kind,
        "state": row.state,
        "stage": row.stage,
        "stages": stages,
        "percent": overall,
        "message": row.message,
        "cancel_requested": row.cancel_requested,
        "worker_pid": row.worker_pid,
        "attempts": row.attempts,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
    }


__all__ = ["Upload", "Workbench", "WorkbenchError"]
