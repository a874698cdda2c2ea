"""The dataset protocol calibration reads, and the seeded subset it reads from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from calibench.config import Subset
from calibench.errors import DatasetError

Sample = dict[str, np.ndarray]


@runtime_checkable
class Dataset(Protocol):
    """Indexable samples: ``dataset[i]`` is one model input set without the batch axis,
    or ``None`` when that sample cannot be read (it is then skipped and counted)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample | None: ...


class InMemoryDataset:
    """Samples the caller already holds: a list of input dicts or of bare arrays."""

    def __init__(self, samples: Sequence[Any], input_names: Sequence[str]) -> None:
        self._samples = samples
        self._names = list(input_names)

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> Sample | None:
        item = self._samples[index]
        if isinstance(item, Mapping):
            return {str(k): np.asarray(v) for k, v in item.items()}
        if isinstance(item, (tuple, list)) and len(item) == len(self._names) > 1:
            return {n: np.asarray(v) for n, v in zip(self._names, item, strict=True)}
        if len(self._names) != 1:
            raise DatasetError(
                f"sample {index} is a bare array, but the model has {len(self._names)} inputs "
                f"({', '.join(self._names)}); give each sample as a dict keyed by input name"
            )
        return {self._names[0]: np.asarray(item)}


def as_dataset(source: Any, input_names: Sequence[str], **options: Any) -> Dataset:
    """Turn what the user gave (a path, a dataset, an iterable) into a :class:`Dataset`."""
    from calibench.data.annotated import open_dataset
    from calibench.data.archive import is_archive
    from calibench.data.images import ImageFolder
    from calibench.data.manifest import MANIFEST_NAME
    from calibench.data.npz import NpzDataset

    if isinstance(source, (str, Path)):
        path = Path(source)
        if (path / MANIFEST_NAME).is_file() or (path.name == MANIFEST_NAME and path.is_file()):
            return open_dataset(path, **options)
        if path.is_dir():
            return ImageFolder(path, **options)
        if path.suffix == ".npz":
            return NpzDataset(path)
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


def select_subset(n: int, subset: Subset) -> list[int]:
    """Seeded indices spread over the whole dataset: one from each of ``k`` equal strata."""
    if n == 0:
        raise DatasetError("the dataset is empty")
    k = subset.size(n)
    if k >= n:
        return list(range(n))
    rng = np.random.default_rng(subset.seed)
    edges = np.linspace(0, n, k + 1)
    starts = np.ceil(edges[:-1]).astype(int)
    stops = np.maximum(np.ceil(edges[1:]).astype(int), starts + 1)
    return [int(rng.integers(lo, hi)) for lo, hi in zip(starts, stops, strict=True)]
