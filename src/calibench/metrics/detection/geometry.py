"""Mapping boxes between original-image pixels and model-input pixels.

Ground truth is annotated on the original image; the model sees it resized and cropped by the
dataset's :class:`~calibench.data.preprocess.Preprocess`. Predictions are mapped back, not the
truth forward, so boxes that the crop cut off still count as missed objects.

Coordinates are continuous (pixel edges: a box covering pixel 0 only is ``0, 0, 1, 1``), which
is how both resizing and COCO's IoU treat them. The resize arithmetic is
``Preprocess.resized_size``, the same rule preprocessing applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibench.data.annotations import SampleInfo
from calibench.errors import DatasetError


@dataclass(frozen=True)
class InputTransform:
    """``input = original × scale − offset`` per axis, and the original image size."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    height: int | None
    width: int | None
    input_height: int | None
    input_width: int | None


def input_transform(info: SampleInfo) -> InputTransform:
    """How ``info``'s original image became the model input."""
    pre = info.preprocess
    height, width = info.height, info.width
    if pre is None or (pre.resize is None and pre.crop is None):
        return InputTransform(1.0, 1.0, 0.0, 0.0, height, width, height, width)
    if height is None or width is None:
        raise DatasetError(
            f"sample {info.index} does not record its original image size, so its boxes "
            "cannot be mapped back to the image"
        )
    resized_h, resized_w = pre.resized_size(height, width)
    top = left = 0
    input_h, input_w = resized_h, resized_w
    if pre.crop is not None:
        input_h, input_w = int(pre.crop[0]), int(pre.crop[1])
        top, left = (resized_h - input_h) // 2, (resized_w - input_w) // 2
    return InputTransform(
        scale_x=resized_w / width,
        scale_y=resized_h / height,
        offset_x=float(left),
        offset_y=float(top),
        height=height,
        width=width,
        input_height=input_h,
        input_width=input_w,
    )


def model_input_size(info: SampleInfo) -> tuple[int, int] | None:
    """``(height, width)`` of the image the model saw, or ``None`` where it is not known."""
    t = input_transform(info)
    if t.input_height is None or t.input_width is None:
        return None
    return t.input_height, t.input_width


def to_original(boxes: np.ndarray, info: SampleInfo) -> np.ndarray:
    """``x1, y1, x2, y2`` boxes [K, 4] in model-input pixels → original-image pixels, clipped to
    the original image where its size is known."""
    t = input_transform(info)
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = (out[:, 0::2] + t.offset_x) / t.scale_x
    out[:, 1::2] = (out[:, 1::2] + t.offset_y) / t.scale_y
    if t.width is not None:
        out[:, 0::2] = out[:, 0::2].clip(0, t.width)
    if t.height is not None:
        out[:, 1::2] = out[:, 1::2].clip(0, t.height)
    return out.astype(np.float32)


def to_model_input(boxes: np.ndarray, info: SampleInfo) -> np.ndarray:
    """The inverse of :func:`to_original`, without clipping: original pixels → model input."""
    t = input_transform(info)
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = out[:, 0::2] * t.scale_x - t.offset_x
    out[:, 1::2] = out[:, 1::2] * t.scale_y - t.offset_y
    return out.astype(np.float32)
