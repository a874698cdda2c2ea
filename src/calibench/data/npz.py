"""Tensors from an ``.npz`` file: one array per model input, samples along axis 0."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from calibench.data.dataset import Sample
from calibench.errors import DatasetError

LABEL_KEYS = frozenset({"labels", "label", "targets"})


class NpzDataset:
    def __init__(self, path: Path) -> None:
        try:
            # allow_pickle=False: an .npz from elsewhere must not run code when read.
            with np.load(path, allow_pickle=False) as data:
                self.arrays = {k: data[k] for k in data.files if k not in LABEL_KEYS}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DatasetError(f"{path} is not a readable .npz file ({exc})") from exc
        if not self.arrays:
            raise DatasetError(f"{path} holds no input arrays")
        lengths = {k: len(v) for k, v in self.arrays.items() if v.ndim > 0}
        if len(set(lengths.values())) != 1 or len(lengths) != len(self.arrays):
            raise DatasetError(
                f"{path}: every array needs the same number of samples along axis 0, got {lengths}"
            )
        self._length = next(iter(lengths.values()))
        self.path = path

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Sample | None:
        return {k: v[index] for k, v in self.arrays.items()}
