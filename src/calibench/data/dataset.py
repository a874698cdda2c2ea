"""The dataset protocol calibration reads, and the seeded subset it reads from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

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


class SubsetSize(Protocol):
    """How many samples to pick and from which seed (``config.Subset`` is one). A protocol, so
    that the data package does not import the configuration, which imports the runtime."""

    @property
    def seed(self) -> int: ...

    def size(self, n: int) -> int: ...


def select_subset(n: int, subset: SubsetSize) -> list[int]:
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
