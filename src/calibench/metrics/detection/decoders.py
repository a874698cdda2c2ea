"""Decoders: one sample's raw detector outputs → :class:`Detections` in model-input pixels.

Detectors differ in how their heads lay boxes and scores out, not in what happens next, so each
decoder only turns its layout into candidate boxes, scores and labels; the score threshold and
class-aware NMS are shared (:func:`~calibench.metrics.detection.nms.nms`). Decoders are found by
name in :data:`DECODERS`, so a new layout is one registered class.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import numpy as np

from calibench.data.annotations import Detections
from calibench.errors import ConfigError
from calibench.metrics._outputs import pick_output, squeeze_leading
from calibench.metrics.detection.nms import nms, xywh_to_xyxy

Candidates = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Boxes ``x1, y1, x2, y2`` [N, 4], scores [N], labels [N] before threshold and NMS."""


@dataclass(kw_only=True)
class Decoder(ABC):
    """Shared settings: ``score_threshold`` (boxes at or below it are dropped), ``iou_threshold``
    (same-class overlap above it is suppressed), ``max_detections`` per sample, and
    ``input_size`` ``(height, width)`` to override the model input size the metric passes.

    The defaults are those of COCO evaluation (YOLOv5 ``val.py``): a low score threshold, so the
    precision-recall curve is measured over its whole length.
    """

    name: ClassVar[str] = ""

    score_threshold: float = 0.001
    iou_threshold: float = 0.65
    max_detections: int = 100
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.score_threshold < 1:
            raise ConfigError(f"score threshold must be in [0, 1), got {self.score_threshold}")
        if not 0 < self.iou_threshold <= 1:
            raise ConfigError(f"NMS IoU threshold must be in (0, 1], got {self.iou_threshold}")
        if self.max_detections < 1:
            raise ConfigError(f"max detections must be 1 or more, got {self.max_detections}")
        if self.input_size is not None:
            size = tuple(int(v) for v in self.input_size)
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"input size must be (height, width), got {self.input_size}")
            self.input_size = (size[0], size[1])

    def decode(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None = None
    ) -> Detections:
        """Detections of one sample (outputs without the batch axis), best first, in pixels of
        the ``(height, width)`` model input."""
        boxes, scores, labels = self.candidates(outputs, self.input_size or input_size)
        scores = scores.astype(np.float64, copy=False)
        mask = (scores > self.score_threshold) & (labels >= 0) & np.isfinite(boxes).all(axis=1)
        boxes, scores, labels = boxes[mask], scores[mask], labels[mask]
        keep = nms(boxes, scores, labels, self.iou_threshold, self.max_detections)
        return Detections(
            boxes=boxes[keep].astype(np.float32).reshape(-1, 4),
            labels=labels[keep].astype(np.int64),
            scores=scores[keep].astype(np.float32),
        )

    @abstractmethod
    def candidates(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None
    ) -> Candidates:
        """Every box the head proposes, in model-input pixels."""


DECODERS: dict[str, type[Decoder]] = {}
"""Decoder classes by the name users choose them by (``map:yolox``)."""

D = TypeVar("D", bound=type[Decoder])


def register_decoder(name: str) -> Callable[[D], D]:
    """Class decorator: make a decoder available under ``name``."""

    def add(cls: D) -> D:
        cls.name = name
        DECODERS[name] = cls
        return cls

    return add


def decoder_for(name: str, **options: Any) -> Decoder:
    """The decoder called ``name`` with ``options`` (its dataclass fields)."""
    cls = DECODERS.get(name)
    if cls is None:
        raise ConfigError(f"unknown detection decoder {name!r}; choose {', '.join(DECODERS)}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"decoder {name!r} has no option {unknown[0]!r}; its options are "
            f"{', '.join(sorted(known))}"
        )
    return cls(**options)


def _rows(array: np.ndarray, decoder: str, layout: str, min_columns: int) -> np.ndarray:
    """``array`` as a 2-D float array of at least ``min_columns`` columns, or a one-line error."""
    array = squeeze_leading(array, 2)
    if array.ndim != 2 or array.shape[1] < min_columns:
        raise ConfigError(
            f"the {decoder} decoder expects an output of shape {layout}, got "
            f"{list(array.shape)}; choose the decoder that fits the model"
        )
    return array.astype(np.float32, copy=False)


def _objectness_candidates(rows: np.ndarray) -> Candidates:
    """``cx, cy, w, h, objectness, class scores…`` rows; score = objectness × best class."""
    classes = rows[:, 5:]
    labels = classes.argmax(axis=1)
    scores = rows[:, 4] * classes[np.arange(rows.shape[0]), labels]
    return xywh_to_xyxy(rows[:, :4]), scores, labels


@register_decoder("yolov5")
@dataclass(kw_only=True)
class YOLOv5Decoder(Decoder):
    """YOLOv5-style ``[anchors, 5 + C]``: ``cx, cy, w, h`` in input pixels, objectness, class
    scores (all sigmoided). Also fits YOLOX exported with decoding inside the model.

    ``output``: the output to read; default the model's first.
    """

    output: str | None = None

    def candidates(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None
    ) -> Candidates:
        raw = pick_output(outputs, self.output, f"the {self.name} decoder")
        return _objectness_candidates(_rows(raw, self.name, "[anchors, 5 + classes]", 6))


@register_decoder("yolox")
@dataclass(kw_only=True)
class YOLOXDecoder(Decoder):
    """YOLOX-style head as exported without decoding (ddddocr's ``common_det.onnx``): the
    YOLOv5 layout, but ``cx, cy`` are offsets in grid cells and ``w, h`` log-sizes in strides:
    ``xy = (raw_xy + grid) * stride``, ``wh = exp(raw_wh) * stride``, cells laid out row by row
    for each stride in turn. Objectness and class scores are already sigmoided.

    The grid needs the model input size; without one the input is taken to be square and its
    size is worked out from the number of anchors (3549 anchors: 416 × 416).
    """

    output: str | None = None
    strides: tuple[int, ...] = (8, 16, 32)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.strides = tuple(int(s) for s in self.strides)
        if not self.strides or min(self.strides) < 1:
            raise ConfigError(f"YOLOX strides must be positive, got {self.strides}")

    def candidates(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None
    ) -> Candidates:
        raw = pick_output(outputs, self.output, f"the {self.name} decoder")
        rows = _rows(raw, self.name, "[anchors, 5 + classes]", 6)
        height, width = input_size or _square_input(rows.shape[0], self.strides)
        grid, stride = _yolox_grid(height, width, self.strides)
        if grid.shape[0] != rows.shape[0]:
            raise ConfigError(
                f"the YOLOX output has {rows.shape[0]} anchors, but a {height}x{width} input "
                f"with strides {', '.join(map(str, self.strides))} gives {grid.shape[0]}; "
                "set the decoder's input_size or strides"
            )
        rows = rows.copy()
        rows[:, 0:2] = (rows[:, 0:2] + grid) * stride
        rows[:, 2:4] = np.exp(rows[:, 2:4]) * stride
        return _objectness_candidates(rows)


@lru_cache(maxsize=8)
def _yolox_grid(height: int, width: int, strides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Cell ``(x, y)`` [N, 2] and stride [N, 1] of every anchor, as YOLOX lays them out."""
    grids, steps = [], []
    for stride in strides:
        xs, ys = np.meshgrid(np.arange(width // stride), np.arange(height // stride))
        grid = np.stack([xs, ys], axis=2).reshape(-1, 2)
        grids.append(grid)
        steps.append(np.full((grid.shape[0], 1), stride))
    return (
        np.concatenate(grids).astype(np.float32),
        np.concatenate(steps).astype(np.float32),
    )


def _square_input(anchors: int, strides: tuple[int, ...]) -> tuple[int, int]:
    """The smallest square input whose grids hold ``anchors`` cells."""
    for size in range(1, 8193):
        count = sum((size // s) ** 2 for s in strides)
        if count == anchors:
            return size, size
        if count > anchors:
            break
    raise ConfigError(
        f"cannot tell the input size of a YOLOX output with {anchors} anchors; "
        "set the decoder's input_size"
    )


@register_decoder("yolov8")
@dataclass(kw_only=True)
class YOLOv8Decoder(Decoder):
    """YOLOv8-style ``[4 + C, anchors]``: ``cx, cy, w, h`` in input pixels, then class scores,
    no objectness; score = best class score.

    ``output``: the output to read; default the model's first.
    """

    output: str | None = None

    def candidates(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None
    ) -> Candidates:
        raw = squeeze_leading(pick_output(outputs, self.output, f"the {self.name} decoder"), 2)
        if raw.ndim != 2:
            raise ConfigError(
                f"the {self.name} decoder expects an output of shape [4 + classes, anchors], "
                f"got {list(raw.shape)}; choose the decoder that fits the model"
            )
        rows = _rows(raw.T, self.name, "[4 + classes, anchors]", 5)
        classes = rows[:, 4:]
        labels = classes.argmax(axis=1)
        scores = classes[np.arange(rows.shape[0]), labels]
        return xywh_to_xyxy(rows[:, :4]), scores, labels


@register_decoder("ssd")
@dataclass(kw_only=True)
class SSDDecoder(Decoder):
    """SSD-style separate outputs: boxes [K, 4], scores [K] and classes [K] (or scores [K, C]
    with no classes output), as detectors with post-processing inside the model give them.

    ``normalized``: boxes are fractions of the input size (``None``: decide per sample, boxes
    within [0, 1.5] count as fractions); ``box_format``: ``"xyxy"`` or ``"yxyx"`` (TensorFlow);
    ``label_offset`` is subtracted from the classes (1 where class 0 is the background);
    ``classes_output=None`` makes every box class 0 when scores are [K].
    """

    boxes_output: str = "boxes"
    scores_output: str = "scores"
    classes_output: str | None = "classes"
    normalized: bool | None = None
    box_format: str = "xyxy"
    label_offset: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.box_format not in ("xyxy", "yxyx"):
            raise ConfigError(f"SSD box format must be xyxy or yxyx, got {self.box_format!r}")

    def candidates(
        self, outputs: dict[str, np.ndarray], input_size: tuple[int, int] | None
    ) -> Candidates:
        who = f"the {self.name} decoder"
        boxes = _rows(pick_output(outputs, self.boxes_output, who), self.name, "[K, 4] boxes", 4)[
            :, :4
        ]
        scores = squeeze_leading(pick_output(outputs, self.scores_output, who), 1)
        if scores.ndim == 2:
            labels = scores.argmax(axis=1)
            scores = scores[np.arange(scores.shape[0]), labels]
        elif self.classes_output is None:
            labels = np.zeros(scores.shape[0], dtype=np.int64)
        else:
            labels = squeeze_leading(pick_output(outputs, self.classes_output, who), 1)
        if scores.ndim != 1 or labels.shape != scores.shape or scores.shape[0] != boxes.shape[0]:
            raise ConfigError(
                f"the ssd decoder needs as many scores and classes as boxes; got boxes "
                f"{list(boxes.shape)}, scores {list(scores.shape)}, classes {list(labels.shape)}"
            )
        labels = np.rint(labels).astype(np.int64) - self.label_offset
        if self.box_format == "yxyx":
            boxes = boxes[:, [1, 0, 3, 2]]
        normalized = self.normalized
        if normalized is None:
            normalized = bool(boxes.size == 0 or np.abs(boxes).max() <= 1.5)
        if normalized:
            if input_size is None:
                raise ConfigError(
                    "normalised SSD boxes need the model input size; set the decoder's input_size"
                )
            height, width = input_size
            boxes = boxes * np.asarray([width, height, width, height], dtype=np.float32)
        return boxes, scores, labels
