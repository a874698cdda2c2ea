"""A project's model and dataset must fit each other: checked where the project is created
(and where a calibration dataset is picked), from the model file's inputs and the layout the
dataset's import recorded, so a pairing that cannot work is refused in words at once instead of
failing its first job (and every retry of it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from calibench.errors import WorkbenchError
from calibench.model.compatibility import (
    ArrayLayout,
    DatasetLayout,
    ImageSettings,
    ModelInput,
    incompatibility,
)
from calibench.model.eligibility import eligibility
from calibench.runtime.inputs import input_specs
from calibench.server.db import DatasetRow, ModelRow


def dataset_layout(dataset: DatasetRow) -> DatasetLayout | None:
    """The dataset's layout as its import summary recorded it (None: a tensor dataset whose
    summary does not list its arrays, so nothing can be judged before a job reads it)."""
    summary = dataset.summary or {}
    sizes = summary.get("image_size")
    image_sizes = None
    if sizes and sizes.get("min") and sizes.get("max"):
        image_sizes = (tuple(sizes["min"][:2]), tuple(sizes["max"][:2]))
    if dataset.format != "npz":
        return DatasetLayout(dataset.name, None, image_sizes)
    arrays = summary.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        return None
    return DatasetLayout(
        dataset.name,
        {
            name: ArrayLayout(tuple(spec.get("shape") or ()), str(spec.get("dtype", "")))
            for name, spec in arrays.items()
        },
    )


def refuse_incompatible(
    workspace: Path,
    model: ModelRow,
    dataset: DatasetRow,
    batch: int = 1,
    preprocess: dict[str, Any] | None = None,
    role: str = "",
) -> None:
    """Refuse (400) a dataset that cannot feed the model; ``role`` names the dataset's use in
    the message ("calibration dataset")."""
    reason = facts_refusal(model_facts(workspace, model), dataset, batch, preprocess)
    if reason is not None:
        lead = f"{role} {dataset.name!r} does not fit {model.name!r}: " if role else ""
        raise WorkbenchError(lead + reason)


@dataclass(frozen=True)
class ModelFacts:
    """What the compatibility rules need of a model file, read once."""

    name: str
    inputs: list[ModelInput]
    nlp: bool


def model_facts(workspace: Path, model: ModelRow) -> ModelFacts | None:
    """The model's inputs, read from its file (None: no file yet, or one that does not read:
    its job says what is wrong with it, in its own words)."""
    if not model.path:
        return None
    try:
        proto = onnx.load(str(workspace / model.path), load_external_data=False)
    except (OSError, ValueError, DecodeError):
        return None
    try:
        specs = input_specs(proto)
    except (KeyError, TypeError, ValueError):  # an element type numpy has no dtype for
        return None
    inputs = [ModelInput(s.name, s.shape, s.dtype.kind) for s in specs]
    return ModelFacts(repr(model.name), inputs, eligibility(proto).nlp)


def facts_refusal(
    facts: ModelFacts | None,
    dataset: DatasetRow,
    batch: int = 1,
    preprocess: dict[str, Any] | None = None,
) -> str | None:
    layout = dataset_layout(dataset)
    if facts is None or layout is None:
        return None
    settings = ImageSettings(
        resize=(preprocess or {}).get("resize"), crop=(preprocess or {}).get("crop"), batch=batch
    )
    return incompatibility(facts.name, facts.inputs, layout, settings, nlp=facts.nlp)


def unfit_datasets(
    workspace: Path,
    model: ModelRow,
    datasets: list[DatasetRow],
    preprocess: dict[str, Any] | None = None,
) -> dict[int, str]:
    """The datasets (by id) that cannot feed the model, each with why: a form offers them
    greyed out, with the reason."""
    facts = model_facts(workspace, model)
    found = {}
    for dataset in datasets:
        reason = facts_refusal(facts, dataset, 1, preprocess)
        if reason is not None:
            found[dataset.id] = reason
    return found
