"""A project as the pages and the API show it, and what the API takes to create one or to
calibrate it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from calibench.config import PLACEMENT_BUDGET_S, DropType, Method, Placement, Preset
from calibench.metrics.registry import NAMES
from calibench.runtime.backend import Runtime
from calibench.server.web.datasets.schemas import DatasetView
from calibench.server.web.jobs.schemas import JobView
from calibench.server.web.models.schemas import ModelView
from calibench.server.web.projects.figures import Gain, LayerSummary, Recipe, Speed
from calibench.server.web.projects.forms import BUDGET_MAX_S
from calibench.server.web.schemas import View, one_of


class Accuracy(View):
    metric: str | None
    figures: dict[str, Any]


class OptimizeOptions(View):
    """Whether the project's model can be calibrated now, and if not, why."""

    enabled: bool
    reason: str | None


class ProjectView(View):
    id: int
    name: str
    model: ModelView
    dataset: DatasetView
    target: str
    precision: str
    parent_id: int | None
    """The FP32 project an INT8 project was calibrated from."""
    children: list[int]
    """The INT8 projects calibrated from this one."""
    settings: dict[str, Any]
    status: str
    """The state of its latest job (``new`` before any)."""
    job: JobView | None
    accuracy: Accuracy | None
    throughput: int | float | None
    """The throughput shown: an INT8 project's from its side-by-side timing with its parent
    (``gain``), an FP32 project's from its baseline."""
    latency_ms: int | float | None
    speed: Speed | None
    """The figures above with how, where and when they were measured."""
    gain: Gain | None
    """An INT8 project against its parent, timed side by side (None until compared)."""
    recipe: Recipe | None
    """What an INT8 project was calibrated with (None for an original model)."""
    layers: LayerSummary | None
    """An INT8 project's layer counts (its calibration report's table)."""
    inference: dict[str, Any] | None
    calibration: dict[str, Any] | None
    has_comparison: bool
    optimize: OptimizeOptions
    created_at: str | None


class ProjectDetail(View):
    """What the project's page shows: the project, its jobs (newest first), its family."""

    project: ProjectView
    jobs: list[JobView]
    parent: ProjectView | None
    children: list[ProjectView]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    model_id: int
    dataset_id: int
    batch: int = Field(1, ge=1, le=1024, description="inference batch size")
    streams: int = Field(1, ge=1, le=64, description="parallel inference streams")
    runtime: str = Field(
        Runtime.ONNXRUNTIME.value,
        pattern=one_of(Runtime),
        description="the runtime that runs the model: onnxruntime or openvino (OpenVINO's CPU "
        "plugin, when installed)",
    )
    preprocess: dict[str, Any] | None = Field(
        None,
        description="image preprocessing: resize, crop, scale, mean, std, color (RGB|BGR|GRAY), "
        "layout (NCHW|NHWC); default: fitted to the model's input",
    )
    metric: str | None = Field(
        None,
        description=f"one of {NAMES} (built-in metrics only); "
        "default: top-1/top-5 for classification",
    )
    target: str | None = Field(
        None,
        max_length=100,
        description='where its jobs run: a target\'s name (GET /api/targets) or "this machine" '
        "(the default)",
    )


class OptimizeRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    dataset_id: int = Field(description="the calibration dataset")
    subset_percent: float = Field(100, gt=0, le=100, description="Subset Size, percent")
    method: str = Field(Method.DEFAULT.value, pattern=one_of(Method))
    max_drop: float | None = Field(
        None, ge=0, lt=100, description="Maximum Accuracy Drop (AccuracyAware), see drop_type"
    )
    drop_type: str = Field(
        DropType.ABSOLUTE.value,
        pattern=one_of(DropType),
        description="absolute: points of the metric; relative: percent of FP32's accuracy",
    )
    preset: str = Field(Preset.PERFORMANCE.value, pattern=one_of(Preset))
    keep_fp32: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=64,
        description="layers kept in FP32: layer names, op types or regexes over the names",
    )
    placement: str = Field(
        Placement.MEASURED.value,
        pattern=one_of(Placement),
        description="measured (default): each INT8 layer is timed against FP32 where the "
        "calibration runs (its target), at the INT8 project's batch size, and stays FP32 where "
        "INT8 is not faster; rule: every layer that can run in INT8 does, untimed",
    )
    placement_budget_s: float = Field(
        PLACEMENT_BUDGET_S,
        gt=0,
        le=BUDGET_MAX_S,
        description="measured placement: the seconds it may spend timing (layers left untimed "
        "when it runs out stay INT8); ignored by rule",
    )
    batch: int | None = Field(None, ge=1, le=1024, description="default: the parent project's")
    streams: int | None = Field(None, ge=1, le=64, description="default: the parent project's")
    runtime: str | None = Field(
        None,
        pattern=one_of(Runtime),
        description="onnxruntime or openvino; the model is calibrated for it; default: the "
        "parent project's",
    )
    target: str | None = Field(
        None,
        max_length=100,
        description='where the calibration runs: a target\'s name or "this machine"; '
        "default: the parent project's target",
    )


class OptimizePage(View):
    """The Optimize INT8 page: the project, the datasets to calibrate on, whether AccuracyAware
    is offered (None) or why not, and the presets in words."""

    project: ProjectView
    datasets: list[DatasetView]
    accuracy_aware_refusal: str | None
    presets: dict[str, str]
    targets: list[str]
    """Where the calibration may run: "this machine" first, then the registered targets."""
    suggested_dataset_id: int
    """The calibration dataset the form starts on: another than the project's, where one
    fits."""
    unfit: dict[int, str] = Field(default_factory=dict)
    """The datasets that cannot feed the model, by id, each with why."""


class ModelPage(View):
    """A model's page: the model, its layer table, its parent and the projects that use it."""

    model: ModelView
    layers: list[dict[str, Any]] | None
    summary: LayerSummary | None
    """The layer counts in words (``8 of 8 Conv/Gemm in INT8; …``)."""
    parent: ModelView | None
    projects: list[ProjectView]
