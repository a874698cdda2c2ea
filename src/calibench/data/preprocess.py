"""Image preprocessing, declared once and applied the same way everywhere.

The pipeline is fixed: decode → colour order → resize → centre crop → scale → mean/std → layout.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from calibench.data.staging import write_dataset_text
from calibench.errors import ConfigError, DatasetError

MAX_SIDE = 8192
"""The largest resize or crop accepted, per side, in pixels."""


@dataclass(frozen=True)
class Preprocess:
    """How an image file becomes one input tensor (without the batch axis).

    ``resize``: ``None``, an int (short side, aspect kept) or ``(height, width)``;
    ``crop``: ``None`` or ``(height, width)`` taken from the centre;
    pixel values become ``(pixel × scale − mean) / std`` per channel.
    """

    resize: int | tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    color: str = "RGB"
    layout: str = "NCHW"
    channels: int = 3

    def __post_init__(self) -> None:
        if self.color not in ("RGB", "BGR", "GRAY"):
            raise ConfigError(f"colour order must be RGB, BGR or GRAY, got {self.color!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"layout must be NCHW or NHWC, got {self.layout!r}")
        if self.channels not in (1, 3):
            raise ConfigError(f"images have 1 or 3 channels, not {self.channels}")
        object.__setattr__(self, "resize", _sizes(self.resize, "resize", single=True))
        object.__setattr__(self, "crop", _sizes(self.crop, "crop", single=False))
        object.__setattr__(self, "scale", _finite(self.scale, "scale"))
        object.__setattr__(self, "mean", _finite_values(self.mean, "mean"))
        object.__setattr__(self, "std", _finite_values(self.std, "std"))
        if any(s == 0 for s in self.std):
            raise ConfigError(f"std (--std) must not contain 0, got {_show(self.std)}")

    @classmethod
    def for_input_shape(cls, shape: list[int | str | None], **overrides: Any) -> Preprocess:
        """Defaults that fit a model input of ``shape`` (exact resize to its fixed size)."""
        layout = overrides.get("layout")
        if layout is None:
            layout = (
                "NHWC"
                if len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3)
                else "NCHW"
            )
        if len(shape) == 4:
            c, h, w = (
                (shape[1], shape[2], shape[3])
                if layout == "NCHW"
                else (shape[3], shape[1], shape[2])
            )
        else:
            c, h, w = 3, None, None
        base: dict[str, Any] = {"layout": layout}
        if isinstance(c, int):
            base["channels"] = c
            if c == 1:
                base["color"] = "GRAY"
        if isinstance(h, int) and isinstance(w, int) and overrides.get("resize") is None:
            if overrides.get("crop") is None:
                base["resize"] = (h, w)
            else:
                base["resize"] = max(h, w)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def apply(self, image: Image.Image) -> np.ndarray:
        """Turn a decoded image into a float32 tensor in this preprocessing's layout."""
        image = image.convert("L" if self.channels == 1 else "RGB")
        if self.resize is not None:
            height, width = self.resized_size(image.height, image.width)
            image = image.resize((width, height), Image.Resampling.BILINEAR)
        if self.crop is not None:
            image = _center_crop(image, self.crop)
        array = np.asarray(image, dtype=np.float32)
        if array.ndim == 2:
            array = array[:, :, None]
        if self.color == "BGR":
            array = array[:, :, ::-1]
        array = array * np.float32(self.scale)
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        array = (array - mean) / std
        if self.layout == "NCHW":
            array = array.transpose(2, 0, 1)
        return np.ascontiguousarray(array, dtype=np.float32)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` of an image after the resize step alone (the one rule both
        preprocessing and mapping detections back to the image use)."""
        if self.resize is None:
            return height, width
        if isinstance(self.resize, int):
            short = min(width, height)
            return round(height * self.resize / short), round(width * self.resize / short)
        return int(self.resize[0]), int(self.resize[1])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sizes(value: Any, option: str, *, single: bool) -> Any:
    """``value`` as ``None``, an int (when ``single``: the short side) or ``(height, width)``,
    each side a whole number of pixels in ``1..MAX_SIDE``; anything else is a ConfigError."""
    if value is None:
        return None
    if isinstance(value, list):
        value = tuple(value)
    if single and not isinstance(value, tuple):
        return _side(value, value, option)
    if not isinstance(value, tuple) or len(value) != 2:
        example = "256 or 224x224" if single else "224x224"
        raise ConfigError(f"{option} (--{option}) takes a size like {example}, got {value!r}")
    return tuple(_side(side, value, option) for side in value)


def _side(side: Any, value: Any, option: str) -> int:
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)):
        raise ConfigError(f"{option} (--{option}) takes whole pixels, got {value!r}")
    if not 1 <= side <= MAX_SIDE:
        raise ConfigError(
            f"{option} (--{option}) must be 1 to {MAX_SIDE} pixels per side, got {value!r}"
        )
    return int(side)


def _finite(value: Any, option: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{option} (--{option}) takes a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise ConfigError(f"{option} (--{option}) must be a finite number, got {value!r}")
    return number


def _finite_values(values: Any, option: str) -> tuple[float, ...]:
    if isinstance(values, np.ndarray):
        values = values.reshape(-1).tolist()
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (tuple, list)) or not values:
        raise ConfigError(f"{option} (--{option}) takes one number per channel, got {values!r}")
    return tuple(_finite(v, option) for v in values)


def _show(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in values)


def _center_crop(image: Image.Image, crop: tuple[int, int]) -> Image.Image:
    height, width = crop
    if image.width < width or image.height < height:
        raise ConfigError(
            f"centre crop {height}x{width} is larger than the resized image "
            f"{image.height}x{image.width}; resize to at least the crop size"
        )
    left = (image.width - width) // 2
    top = (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def preprocess_json(preprocess: Preprocess) -> str:
    """The text :func:`save_preprocess` writes."""
    return json.dumps(preprocess.to_dict(), indent=2) + "\n"


def save_preprocess(preprocess: Preprocess, path: Path) -> Path:
    """Write the preprocessing of a model–dataset pair as a small JSON file, whole or not at
    all (a :class:`ConfigError` names the file when it cannot be written)."""
    try:
        write_dataset_text(path, preprocess_json(preprocess))
    except DatasetError as exc:
        raise ConfigError(str(exc)) from exc
    return path


def load_preprocess(path: Path) -> Preprocess:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the preprocessing file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preprocessing file holds one JSON object")
    known = {f.name for f in fields(Preprocess)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown preprocessing keys {unknown}; known: {sorted(known)}")
    return Preprocess(**data)
