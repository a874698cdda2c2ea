"""What each kind of job is asked to do: a frozen description, stored as JSON in the job's row.

A description holds everything its job reads (paths relative to the workspace, plain settings),
so a worker needs nothing else, on this machine or another. Its JSON carries the description's
``version``; a reader refuses a version it does not know (a job queued by a newer calibench),
in words, rather than guess. The field names are the keys of ``inputs`` in the stored JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from calibench.config import CalibrationConfig, Method, Placement
from calibench.errors import CalibenchError
from calibench.runtime.backend import Runtime
from calibench.server.jobs.states import Stage

D = TypeVar("D", bound="JobDescription")

LOCAL = "this machine"
"""The target a project names when its jobs run here; a description then says ``None``."""
REMOTE_BEFORE = (Stage.PREPARING_ASSETS, Stage.UPLOADING)
REMOTE_AFTER = (Stage.DOWNLOADING,)
"""The bars a job on a remote target has around its own stages."""


class JobDescriptionError(CalibenchError):
    """A stored job description this calibench cannot read."""


@dataclass(frozen=True)
class JobDescription:
    KIND: ClassVar[str]
    VERSION: ClassVar[int] = 1
    OLDER: ClassVar[tuple[int, ...]] = ()
    """Earlier versions whose inputs this version reads as they are: the fields added since
    have defaults that say what those jobs did."""
    STAGES: ClassVar[tuple[Stage, ...]]
    INPUTS: ClassVar[tuple[str, ...]]
    """The fields that name a file or folder the job reads (relative to the workspace)."""

    def stages(self) -> tuple[Stage, ...]:
        """The stages the job goes through, in order (the progress bars it starts with)."""
        return self.on_target(self.STAGES)

    def on_target(self, stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
        """``stages``, framed by the upload and the download when the job runs on a target."""
        if getattr(self, "target", None) is None:
            return stages
        return (*REMOTE_BEFORE, *stages, *REMOTE_AFTER)

    def input_paths(self) -> tuple[str, ...]:
        """What the job reads from the workspace: what must stay while it lives, and what an
        executor on another machine sends there first."""
        return tuple(getattr(self, name) for name in self.INPUTS)

    def inputs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> dict[str, Any]:
        return {"version": self.VERSION, "inputs": self.inputs()}

    @classmethod
    def from_inputs(cls: type[D], inputs: dict[str, Any]) -> D:
        """The description whose ``inputs`` these are (the current version)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(inputs) - set(fields))
        missing = sorted(
            name
            for name, f in fields.items()
            if name not in inputs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if unknown or missing:
            words = [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            words += [f"missing {', '.join(map(repr, missing))}"] if missing else []
            raise JobDescriptionError(
                f"the {cls.KIND} job's description does not fit version {cls.VERSION}: "
                + "; ".join(words)
            )
        return cls(**inputs)

    @classmethod
    def from_json(cls: type[D], data: dict[str, Any]) -> D:
        # Rows written before descriptions had versions hold version 1.
        version = data.get("version", 1)
        if version != cls.VERSION and version not in cls.OLDER:
            known = [*cls.OLDER, cls.VERSION]
            read = " and ".join(map(str, known))
            raise JobDescriptionError(
                f"the {cls.KIND} job was described in version {version!r} of its description; "
                f"this calibench reads version{'s' if len(known) > 1 else ''} {read} only: run "
                "it with the calibench that queued it, or queue it again"
            )
        inputs = data.get("inputs")
        if not isinstance(inputs, dict):
            raise JobDescriptionError(f"the {cls.KIND} job's description has no inputs")
        return cls.from_inputs(inputs)


@dataclass(frozen=True)
class BaselineJob(JobDescription):
    """The FP32 model's inference on the project's dataset: accuracy, speed, layer table."""

    KIND: ClassVar[str] = "baseline"
    VERSION: ClassVar[int] = 2
    OLDER: ClassVar[tuple[int, ...]] = (1,)
    """Version 2 added ``runtime``; version-1 jobs ran on ONNX Runtime."""
    STAGES: ClassVar[tuple[Stage, ...]] = (Stage.ACCURACY, Stage.PERFORMANCE, Stage.LAYERS)
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "dataset")

    model: str
    name: str
    dataset: str
    dataset_name: str
    batch: int
    streams: int
    seconds: float
    preprocess: dict[str, Any] | None = None
    metric: str | None = None
    target: str | None = None
    """The registered target (``calibench target add``) the job runs on; None: this machine.
    A default, so rows written before targets read as local and the version stays 1."""
    runtime: str = Runtime.ONNXRUNTIME.value
    """The runtime of the inference settings (``runtime.backend.Runtime``): what the speed
    and accuracy are measured on."""


@dataclass(frozen=True)
class CalibrationNames:
    """How messages and reports name the job's models and datasets (as the person named them)."""

    fp32: str | None = None
    int8: str | None = None
    calibration: str | None = None
    validation: str | None = None


CALIBRATION_STAGES = (
    Stage.STATISTICS,
    Stage.QUANTIZATION,
    Stage.PLACEMENT,
    Stage.BIAS_CORRECTION,
)
"""The stages of calibration proper (the calibration library reports them by these names)."""


@dataclass(frozen=True)
class CalibrationJob(JobDescription):
    """An INT8 model calibrated from the parent project's model, its inference on the parent's
    dataset, and its comparison with the parent."""

    KIND: ClassVar[str] = "calibration"
    VERSION: ClassVar[int] = 2
    OLDER: ClassVar[tuple[int, ...]] = (1,)
    """Version 2 added ``runtime``; version-1 jobs ran on ONNX Runtime."""
    INPUTS: ClassVar[tuple[str, ...]] = ("model", "dataset", "validation")
    STAGES: ClassVar[tuple[Stage, ...]] = (
        *CALIBRATION_STAGES,
        Stage.INFERENCE,
        Stage.COMPARISON,
    )
    ACCURACY_AWARE_STAGES: ClassVar[tuple[Stage, ...]] = (
        *CALIBRATION_STAGES,
        Stage.ACCURACY_AWARE,
        Stage.INFERENCE,
        Stage.COMPARISON,
    )

    model: str
    dataset: str
    """The calibration dataset."""
    validation: str
    """The parent project's dataset: the INT8 model's inference, and AccuracyAware's checks."""
    config: CalibrationConfig
    batch: int
    streams: int
    seconds: float
    parent_inference: dict[str, Any] | None
    """The parent's baseline inference report, compared against."""
    names: CalibrationNames = CalibrationNames()
    preprocess: dict[str, Any] | None = None
    metric: str | None = None
    target: str | None = None
    """As :attr:`BaselineJob.target`."""
    runtime: str = Runtime.ONNXRUNTIME.value
    """As :attr:`BaselineJob.runtime`; the model is calibrated for it too (``config.runtime``)."""

    def stages(self) -> tuple[Stage, ...]:
        aware = self.config.method is Method.ACCURACY_AWARE
        stages = self.ACCURACY_AWARE_STAGES if aware else self.STAGES
        if self.config.placement is Placement.RULE:  # nothing is timed: no stage to wait on
            stages = tuple(s for s in stages if s is not Stage.PLACEMENT)
        return self.on_target(stages)

    def inputs(self) -> dict[str, Any]:
        return {
            **super().inputs(),
            "config": self.config.to_dict(),
            "names": dataclasses.asdict(self.names),
        }

    @classmethod
    def from_inputs(cls, inputs: dict[str, Any]) -> CalibrationJob:
        typed = dict(inputs)
        if isinstance(typed.get("config"), dict):
            typed["config"] = CalibrationConfig.from_dict(typed["config"])
        if isinstance(typed.get("names"), dict):
            typed["names"] = CalibrationNames(**typed["names"])
        return super().from_inputs(typed)


@dataclass(frozen=True)
class ImportJob(JobDescription):
    """A large dataset upload unpacked and checked into ``datasets/<folder>``."""

    KIND: ClassVar[str] = "import"
    INPUTS: ClassVar[tuple[str, ...]] = ("upload",)
    STAGES: ClassVar[tuple[Stage, ...]] = (
        Stage.UNPACKING,
        Stage.CHECKING_SAMPLES,
        Stage.SUMMARY,
    )

    upload: str
    filename: str
    """The name the browser gave the upload: messages name it so, never by its server path."""
    name: str
    """The dataset's name in the workbench."""
    folder: str
    dataset: str
    """``datasets/<folder>``: the dataset row's path."""
    memory_limit: int
    """The most private memory the import's worker may take (bytes)."""
    dataset_id: int
    kind: str | None = None
    """The dataset's type, when the person chose one (else it is recognised)."""


@dataclass(frozen=True)
class SideBySideJob(JobDescription):
    """Two projects' models (of one original model) timed side by side, in alternating windows
    at the same inference settings, so that their speeds may be divided (Compare)."""

    KIND: ClassVar[str] = "side-by-side timing"
    INPUTS: ClassVar[tuple[str, ...]] = ("model_a", "model_b", "dataset")
    STAGES: ClassVar[tuple[Stage, ...]] = (Stage.CHECKING_MODELS, Stage.TIMING)

    project_a: int
    project_b: int
    """The projects whose pair the timing is stored for (the reference first)."""
    model_a: str
    model_b: str
    name_a: str
    name_b: str
    dataset: str
    """The reference project's dataset: its first sample feeds both models."""
    dataset_name: str
    batch: int
    streams: int
    seconds: float
    """The time each model is timed for, in all its windows."""
    preprocess: dict[str, Any] | None = None
    runtime: str = "onnxruntime"
    """The runtime both models are timed on: the projects' own (both name the same one)."""
    target: str | None = None
    """As :attr:`BaselineJob.target`: both projects name it."""
