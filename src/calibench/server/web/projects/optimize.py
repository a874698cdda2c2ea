"""INT8 calibration of a project: the INT8 project and its pending model are made at once, and
its calibration job is queued."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from calibench.config import (
    PLACEMENT_BUDGET_S,
    CalibrationConfig,
    DropType,
    Method,
    Placement,
    Preset,
    Subset,
)
from calibench.errors import ConfigError, WorkbenchError
from calibench.server.db import ModelRow, ProjectRow
from calibench.server.jobs.kinds import LOCAL, CalibrationJob, CalibrationNames
from calibench.server.jobs.lifecycle import queue_job
from calibench.server.web.base import WorkbenchBase
from calibench.server.web.datasets.service import get_dataset, ready_dataset
from calibench.server.web.models.service import get_model
from calibench.server.web.projects.checks import accuracy_aware_refusal, inference_settings
from calibench.server.web.projects.compatible import refuse_incompatible
from calibench.server.web.projects.figures import int8_name
from calibench.server.web.projects.schemas import ProjectView
from calibench.server.web.projects.views import get_project, optimize_options, project_view
from calibench.server.web.targets.service import target_choice

PRESET_HELP = {
    Preset.PERFORMANCE.value: "symmetric activations: the fastest INT8 kernels (the default)",
    Preset.MIXED.value: "asymmetric activations: more accurate for activations that are not "
    "centred on zero (e.g. after SiLU or without ReLU), slightly slower",
}
NEEDS_MAX_DROP = "the AccuracyAware method needs a Maximum Accuracy Drop"
"""The calibration settings refuse AccuracyAware without a drop too; this names the form's
field, before the settings are made."""


class OptimizeService(WorkbenchBase):
    def optimize(
        self,
        project_id: int,
        dataset_id: int,
        subset_percent: float = 100,
        method: str = Method.DEFAULT.value,
        max_drop: float | None = None,
        preset: str = Preset.PERFORMANCE.value,
        batch: int | None = None,
        streams: int | None = None,
        drop_type: str = DropType.ABSOLUTE.value,
        keep_fp32: list[str] | None = None,
        target: str | None = None,
        runtime: str | None = None,
        placement: str = Placement.MEASURED.value,
        placement_budget_s: float | None = None,
    ) -> ProjectView:
        """Calibrate project ``project_id``'s model on dataset ``dataset_id``. The method, preset,
        drop type, subset, drop and placement are checked by :class:`CalibrationConfig` alone;
        its refusal is a 400 in its own words. It runs on ``target`` (default: the parent
        project's), where measured placement times it, at the INT8 project's batch size."""
        with self.sessions.begin() as session:
            parent = get_project(session, project_id)
            remote = target_choice(self.workspace, parent.target if target is None else target)
            calibration = ready_dataset(session, dataset_id)
            options = optimize_options(session, parent)
            if not options.enabled:
                raise WorkbenchError(f"INT8 calibration is not available: {options.reason}", 409)
            model = get_model(session, parent.model_id)
            validation = get_dataset(session, parent.dataset_id)
            refuse_incompatible(
                self.workspace,
                model,
                calibration,
                preprocess=parent.settings.get("preprocess"),
                role="the calibration dataset",
            )
            accuracy_aware = method == Method.ACCURACY_AWARE.value
            if accuracy_aware:
                refusal = accuracy_aware_refusal(validation)
                if refusal is not None:
                    raise WorkbenchError(refusal)
                if max_drop is None:
                    raise WorkbenchError(NEEDS_MAX_DROP)
            settings = inference_settings(
                parent.settings.get("batch", 1) if batch is None else batch,
                parent.settings.get("streams", 1) if streams is None else streams,
                parent.settings.get("runtime") if runtime is None else runtime,
                local=remote is None,
            )
            try:
                config = CalibrationConfig(
                    preset=preset,  # type: ignore[arg-type]  # the config reads the value
                    subset=Subset.parse(f"{subset_percent:g}%"),
                    method=method,  # type: ignore[arg-type]
                    max_drop=max_drop if accuracy_aware else None,
                    drop_type=drop_type,  # type: ignore[arg-type]
                    keep_fp32=tuple(keep_fp32 or ()),
                    runtime=settings["runtime"],  # placed for the runtime it will run on
                    placement=placement,  # type: ignore[arg-type]
                    placement_budget_s=PLACEMENT_BUDGET_S
                    if placement_budget_s is None
                    else placement_budget_s,
                    placement_batch=settings["batch"],  # stored as the job will time it
                )
            except ConfigError as error:
                raise WorkbenchError(str(error)) from error
            child_name = _unique_model_name(
                session, int8_name(model.name, config.to_dict(), calibration.name)
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
                target=remote or LOCAL,
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
            queue_job(
                session,
                child.id,
                CalibrationJob(
                    model=model.path,
                    dataset=calibration.path,
                    validation=validation.path,
                    config=config,
                    **settings,
                    seconds=self.perf_seconds,
                    preprocess=preprocess,
                    metric=metric,
                    parent_inference=parent.inference,
                    names=CalibrationNames(
                        fp32=model.name,
                        int8=child_name,
                        calibration=calibration.name,
                        validation=validation.name,
                    ),
                    target=remote,
                ),
            )
            return project_view(session, child)


def _unique_model_name(session: Session, name: str) -> str:
    taken = set(session.scalars(select(ModelRow.name).where(ModelRow.name.like(f"{name}%"))))
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"
