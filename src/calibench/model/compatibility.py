"""Whether a dataset can feed a model, decided from their descriptions before any job runs.

A project whose dataset cannot feed its model (two token-id inputs and a folder of photos, an
input of 4 channels, an .npz without the array an input needs) would fail at its first sample,
minutes later, and fail again on every retry. The same rules the batch reader applies to each
sample (:mod:`calibench.runtime.inputs`) are applied here to the dataset's recorded layout:
how many inputs, integer or float, rank, channels, fixed sizes. The answer is a reason in
words, or None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from calibench.errors import DatasetError

IMAGE_CHANNELS = (1, 3)
"""Images are decoded to grayscale or RGB: the channel counts a dataset of images can fill."""


@dataclass(frozen=True)
class ModelInput:
    """A graph input (as ``runtime.inputs.input_specs`` reads it): its name, shape (a symbol
    or None for a free dimension) and the numpy dtype kind it takes ("f" float, "i"/"u"
    integer, "b" bool)."""

    name: str
    shape: tuple[int | str | None, ...]
    kind: str = "f"

    @property
    def integer(self) -> bool:
        return self.kind in "iub"


@dataclass(frozen=True)
class ArrayLayout:
    """One array of a tensor dataset: its shape with the samples along axis 0, and its dtype."""

    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class DatasetLayout:
    """What a dataset holds, as its import recorded it."""

    name: str
    arrays: Mapping[str, ArrayLayout] | None = None
    """A tensor dataset's arrays by name (None: a dataset of images)."""
    image_sizes: tuple[tuple[int, int], tuple[int, int]] | None = None
    """The smallest and the largest image, (height, width) each, where known."""

    @property
    def images(self) -> bool:
        return self.arrays is None


@dataclass(frozen=True)
class ImageSettings:
    """What the preprocessing does to an image's size, and how many are stacked in a batch."""

    resize: int | tuple[int, int] | None = None
    crop: tuple[int, int] | None = None
    batch: int = 1

    @property
    def size(self) -> tuple[int, int] | None:
        """The (height, width) every image comes out at, when the settings fix it."""
        if self.crop is not None:
            return (int(self.crop[0]), int(self.crop[1]))
        if isinstance(self.resize, (list, tuple)):
            return (int(self.resize[0]), int(self.resize[1]))
        return None


def incompatibility(
    model_name: str,
    inputs: Sequence[ModelInput],
    dataset: DatasetLayout,
    settings: ImageSettings | None = None,
    *,
    nlp: bool = False,
) -> str | None:
    """Why ``dataset`` cannot feed ``model_name`` (None: it can, as far as its layout says)."""
    if not inputs:
        return f"{model_name} has no inputs, so no dataset can feed it"
    if dataset.images:
        return _images_refusal(model_name, inputs, dataset, settings or ImageSettings(), nlp)
    assert dataset.arrays is not None
    return _arrays_refusal(model_name, inputs, dataset.name, dataset.arrays)


def check_compatible(
    model_name: str,
    inputs: Sequence[ModelInput],
    dataset: DatasetLayout,
    settings: ImageSettings | None = None,
    *,
    nlp: bool = False,
) -> None:
    """Raise :class:`DatasetError` with :func:`incompatibility`'s words."""
    reason = incompatibility(model_name, inputs, dataset, settings, nlp=nlp)
    if reason is not None:
        raise DatasetError(reason)


def _images_refusal(
    model: str,
    inputs: Sequence[ModelInput],
    dataset: DatasetLayout,
    settings: ImageSettings,
    nlp: bool,
) -> str | None:
    names = ", ".join(i.name for i in inputs)
    given = f"{dataset.name!r} holds images"
    integer = [i.name for i in inputs if i.integer]
    if nlp or integer:
        what = "token ids: an NLP model" if nlp else "integers, not pixels"
        return (
            f"{model} takes {', '.join(integer) or names} as {what}; {given}, which can feed "
            f"only an image model. Use an .npz dataset with one array per input ({names})"
        )
    if len(inputs) != 1:
        return (
            f"{model} has {len(inputs)} inputs ({names}); {given}, which can feed a "
            "single-input model only. Use an .npz dataset with one array per input"
        )
    spec = inputs[0]
    if len(spec.shape) != 4:
        return (
            f"{model}'s input {spec.name!r} has shape {_show(spec.shape)}; images become "
            "[batch, channels, height, width] tensors, which need an input of 4 dimensions. "
            "Use an .npz dataset whose array has the input's shape"
        )
    layout_nhwc = spec.shape[3] in IMAGE_CHANNELS and spec.shape[1] not in IMAGE_CHANNELS
    channels, height, width = (
        (spec.shape[3], spec.shape[1], spec.shape[2])
        if layout_nhwc
        else (spec.shape[1], spec.shape[2], spec.shape[3])
    )
    if isinstance(channels, int) and channels not in IMAGE_CHANNELS:
        return (
            f"{model}'s input {spec.name!r} ({_show(spec.shape)}) takes {channels} channels; "
            f"images become 1 (grayscale) or 3 (RGB) channels. Use an .npz dataset for "
            f"{channels}-channel data"
        )
    fixed = (height, width) if isinstance(height, int) and isinstance(width, int) else None
    size = settings.size
    if fixed is not None and size is not None and size != fixed:
        return (
            f"the preprocessing makes images {size[0]}×{size[1]} (height×width) but "
            f"{model}'s input {spec.name!r} takes {fixed[0]}×{fixed[1]}: change the resize or "
            "the crop"
        )
    varied = dataset.image_sizes is not None and dataset.image_sizes[0] != dataset.image_sizes[1]
    if fixed is None and size is None and varied and settings.batch > 1:
        assert dataset.image_sizes is not None
        (h0, w0), (h1, w1) = dataset.image_sizes
        return (
            f"{model}'s input {spec.name!r} ({_show(spec.shape)}) takes any size and the "
            f"images of {dataset.name!r} range from {h0}×{w0} to {h1}×{w1}: a batch of "
            f"{settings.batch} needs one size. Set a resize, or use batch size 1"
        )
    return None


def _arrays_refusal(
    model: str, inputs: Sequence[ModelInput], dataset: str, arrays: Mapping[str, ArrayLayout]
) -> str | None:
    for spec in inputs:
        array = arrays.get(spec.name)
        if array is None:
            held = ", ".join(sorted(arrays)) or "no arrays"
            return (
                f"{model} needs an array named {spec.name!r} (one per input: "
                f"{', '.join(i.name for i in inputs)}); the .npz dataset {dataset!r} holds "
                f"{held}"
            )
        sample = tuple(array.shape[1:])
        if spec.shape and len(sample) == len(spec.shape) and sample[:1] == (1,):
            sample = sample[1:]  # each sample stored with its own batch axis of 1
        if len(sample) != len(spec.shape) - 1:
            return (
                f"{model}'s input {spec.name!r} has shape {_show(spec.shape)} but the array "
                f"{spec.name!r} of {dataset!r} holds samples of shape {list(sample)}: each "
                f"sample needs {max(len(spec.shape) - 1, 0)} dimensions"
            )
        for want, got in zip(spec.shape[1:], sample, strict=True):
            if isinstance(want, int) and want > 0 and want != got:
                return (
                    f"{model}'s input {spec.name!r} has shape {_show(spec.shape)} but the "
                    f"array {spec.name!r} of {dataset!r} holds samples of shape {list(sample)}"
                )
        kind = _kind(array.dtype)
        if kind is not None and (kind in "iub") != spec.integer:
            takes = "integers" if spec.integer else "floating-point numbers"
            return (
                f"{model}'s input {spec.name!r} takes {takes} but the array {spec.name!r} of "
                f"{dataset!r} holds {array.dtype}"
            )
    return None


def _kind(dtype: str) -> str | None:
    try:
        return np.dtype(dtype).kind
    except TypeError:
        return None


def _show(shape: Sequence[int | str | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
