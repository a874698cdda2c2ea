"""Batches of arrays that stay in memory up to a budget and go to disk beyond it.

The AccuracyAware method evaluates dozens of models on the same validation samples and compares
each with FP32's outputs, so it keeps both. For a 640×640 detector and a few thousand samples
that is more than the machine holds; past the budget, batches are written to a private folder
and read back memory-mapped when used.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


class SpillList(Sequence[list[np.ndarray]]):
    """A list of batches (each a list of arrays) held in memory up to ``budget`` bytes."""

    def __init__(self, budget: int | None) -> None:
        self.budget = budget
        self.held = 0
        self._items: list[list[np.ndarray] | Path] = []
        self._folder: Path | None = None

    def append(self, arrays: Sequence[np.ndarray]) -> None:
        size = sum(int(a.nbytes) for a in arrays)
        if self.budget is None or self.held + size <= self.budget:
            self._items.append(list(arrays))
            self.held += size
            return
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="calibench-spill-"))
            weakref.finalize(self, shutil.rmtree, self._folder, True)
        path = self._folder / f"{len(self._items)}.npz"
        np.savez(path, *arrays)
        self._items.append(path)

    @property
    def spilled(self) -> bool:
        return self._folder is not None

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> list[np.ndarray]:  # type: ignore[override]
        item = self._items[index]
        if isinstance(item, Path):
            with np.load(item) as loaded:
                return [loaded[f"arr_{k}"] for k in range(len(loaded.files))]
        return item

    def __iter__(self) -> Iterator[list[np.ndarray]]:
        for index in range(len(self._items)):
            yield self[index]
