"""Open what the user named as a dataset, and bind it to a model's input and preprocessing.

This is the top of the data package: it knows every format (image folder, ``.npz``, imported
dataset) so that the formats themselves, and :mod:`calibench.data.dataset` below them, need
not know each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from calibench.data.annotated import open_dataset
from calibench.data.archive import is_archive
from calibench.data.dataset import Dataset, InMemoryDataset
from calibench.data.images import ImageFolder
from calibench.data.manifest import MANIFEST_NAME
from calibench.data.npz_labels import open_npz
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError, NotEligibleError
from calibench.model import compatibility


class ModelInput(Protocol):
    """What binding needs to know of a model input (``runtime.inputs.InputSpec`` is one).

    A protocol rather than an import: the runtime reads datasets, so the data package must not
    depend on the runtime in turn."""

    @property
    def name(self) -> str: ...

    @property
    def shape(self) -> tuple[int | str | None, ...]: ...


def as_dataset(source: Any, input_names: Sequence[str], **options: Any) -> Dataset:
    """Turn what the user gave (a path, a dataset, an iterable) into a :class:`Dataset`."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if (path / MANIFEST_NAME).is_file() or (path.name == MANIFEST_NAME and path.is_file()):
            return open_dataset(path, **options)
        if path.is_dir():
            return ImageFolder(path, **options)
        if path.suffix == ".npz":
            return open_npz(path)
        if not path.exists():
            raise DatasetError(f"dataset not found: {path}")
        if is_archive(path):
            raise DatasetError(
                f"{path} is an archive; import it first with `calibench dataset import {path}` "
                "and use the imported dataset"
            )
        raise DatasetError(f"{path}: calibration data must be a folder of images or an .npz file")
    if isinstance(source, np.ndarray):
        return InMemoryDataset(list(source), input_names)
    if isinstance(source, Dataset) and not isinstance(source, (list, tuple)):
        return source
    if isinstance(source, Iterable):
        return InMemoryDataset(list(source), input_names)
    raise DatasetError(f"cannot read calibration data from a {type(source).__name__}")


def open_for_model(
    source: Any,
    specs: Sequence[ModelInput],
    preprocess: Preprocess | dict[str, Any] | None = None,
    model_name: str = "the model",
) -> tuple[Dataset, Preprocess | None]:
    """The dataset, bound to the model's image input when it holds images, and the
    preprocessing it was bound with (``None`` for tensor datasets)."""
    if not specs:
        raise NotEligibleError(
            f"{model_name} has no inputs (every value it computes is a constant), so there is "
            "nothing to calibrate or feed data to"
        )
    data = as_dataset(source, [s.name for s in specs])
    bind = getattr(data, "bind", None)
    if bind is None or not getattr(data, "needs_binding", True):
        return data, None
    # The workbench's check at project creation, here before the first sample: token ids,
    # several inputs, an input that is not [batch, channels, height, width] of 1 or 3
    # channels, a crop or exact resize that misses the input's size.
    given = preprocess.to_dict() if isinstance(preprocess, Preprocess) else preprocess or {}
    compatibility.check_compatible(
        model_name,
        [compatibility.ModelInput(s.name, s.shape, _kind(s)) for s in specs],
        compatibility.DatasetLayout(_shown(source)),
        compatibility.ImageSettings(resize=given.get("resize"), crop=given.get("crop")),
    )
    if isinstance(preprocess, Preprocess):
        chosen = preprocess
    else:
        chosen = Preprocess.for_input_shape(list(specs[0].shape), **(preprocess or {}))
    bind(specs[0].name, chosen)
    return data, chosen


def _shown(source: Any) -> str:
    """The dataset as the messages name it: its file or folder name."""
    return Path(source).name if isinstance(source, (str, Path)) else "the dataset"


def _kind(spec: ModelInput) -> str:
    """The numpy kind of an input's dtype where the spec has one (float otherwise)."""
    dtype = getattr(spec, "dtype", None)
    return str(getattr(dtype, "kind", "f"))
