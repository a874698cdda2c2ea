"""What an annotated dataset holds beside its inputs: the task, class names, per-sample truth.

These types are shared by dataset import (which produces them), metrics (which score model
outputs against them) and the AccuracyAware method (which optimises a metric over them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

import numpy as np

from calibench.data.dataset import Sample
from calibench.data.preprocess import Preprocess


class Task(str, Enum):
    CLASSIFICATION = "classification"
    DETECTION = "detection"
    NOT_ANNOTATED = "not-annotated"
    TENSORS = "tensors"
    """An .npz of model inputs, with optional per-sample labels of any shape."""


@dataclass(frozen=True)
class Detections:
    """Boxes in original-image pixels, ``x1, y1, x2, y2``; ``scores`` only for predictions."""

    boxes: np.ndarray
    """float32 [K, 4]"""
    labels: np.ndarray
    """int64 [K], indices into the dataset's ``classes``"""
    scores: np.ndarray | None = None
    """float32 [K]"""


Annotation = int | float | str | np.ndarray | Detections | None
"""A class index (classification, tensors with class labels), boxes (detection), a number, a
text or an array (tensors with other labels, for custom metrics: ``data.npz_labels``), or
nothing."""


@dataclass(frozen=True)
class SampleInfo:
    """Where a sample came from, for metrics that must map outputs back to the image."""

    index: int
    path: str | None = None
    height: int | None = None
    """Original image height in pixels, before preprocessing."""
    width: int | None = None
    preprocess: Preprocess | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class AnnotatedDataset(Protocol):
    """A :class:`~calibench.data.dataset.Dataset` that also knows the truth of each sample."""

    task: Task
    classes: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample | None: ...

    def annotation(self, index: int) -> Annotation: ...

    def info(self, index: int) -> SampleInfo: ...


def is_annotated(data: object) -> bool:
    """Whether ``data`` holds the truth of its samples, so that accuracy can be measured on it.

    Tensors count when they carry labels (``labelled``); datasets without that attribute count
    when they have classes, as tensors with class labels always do."""
    if not isinstance(data, AnnotatedDataset) or data.task is Task.NOT_ANNOTATED:
        return False
    if data.task is Task.TENSORS:
        return bool(getattr(data, "labelled", data.classes))
    return True
