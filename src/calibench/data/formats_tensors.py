"""Tensors: an ``.npz`` of model inputs (samples on axis 0) with an optional ``labels`` array.

Reading goes through :class:`~calibench.data.npz.NpzDataset`, so import accepts exactly what
calibration can read later; the labels array is checked here because that class skips it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from calibench.data.annotations import Task
from calibench.data.npz import LABEL_KEYS, NpzDataset, read_member
from calibench.data.scan import Candidate, Layout, Tree
from calibench.errors import DatasetError


def read_npz(tree: Tree, *, beside_images: bool = False) -> Layout | None:
    """The one ``.npz`` in the tree; ``None`` when there is none, or when images are there too
    and ``beside_images`` is false (the images are then the dataset)."""
    found = tree.with_suffix(".npz")
    if not found or (tree.images and not beside_images):
        return None
    if len(found) > 1:
        raise DatasetError(
            f"{tree.where()}: several .npz files ({', '.join(found)}); import one at a time"
        )
    rel = found[0]
    path, shown = tree.path(rel), tree.where(rel)
    try:
        data = NpzDataset(path)
    except DatasetError as exc:  # name the user's file, not the staging copy
        raise DatasetError(str(exc).replace(str(path), shown)) from exc
    count = len(data)
    arrays = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in data.arrays.items()}
    del data  # drop the memory maps before the folder is moved
    labels = _labels(path, shown, count)
    if labels is None:
        return Layout(
            Task.TENSORS, "npz", [], [Candidate(rel) for _ in range(count)],
            extra={"npz": rel, "arrays": arrays},
        )  # fmt: skip
    classes = [str(i) for i in range(int(labels.max(initial=-1)) + 1)]
    samples = [Candidate(rel, label=int(label)) for label in labels]
    return Layout(Task.TENSORS, "npz", classes, samples, extra={"npz": rel, "arrays": arrays})


def _labels(path: Path, shown: str, count: int) -> np.ndarray | None:
    """The labels array (1-D, integers ≥ 0, one per sample), or ``None`` when there is none."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            key = next((k for k in sorted(LABEL_KEYS) if f"{k}.npy" in names), None)
            if key is None:
                return None
            labels = read_member(path, archive, archive.getinfo(f"{key}.npy"))
    except DatasetError as exc:  # the header declares more than the file may hold
        raise DatasetError(str(exc).replace(str(path), shown)) from exc
    except Exception as exc:  # zipfile, zlib and numpy raise many types on damaged bytes
        raise DatasetError(f"{shown}: its labels array is not readable ({exc})") from exc
    if labels.ndim != 1 or len(labels) != count or labels.dtype.kind not in "iu":
        raise DatasetError(
            f"{shown}: '{key}' must hold one integer per sample ({count}), got {labels.dtype} "
            f"{list(labels.shape)}; fix the array"
        )
    if len(labels) and labels.min() < 0:
        raise DatasetError(f"{shown}: '{key}' holds negative labels; class indices start at 0")
    return labels.astype(np.int64)
