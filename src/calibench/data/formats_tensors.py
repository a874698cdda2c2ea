"""Tensors: an ``.npz`` of model inputs (samples on axis 0) with optional labels.

Reading goes through :class:`~calibench.data.npz.NpzDataset` and
:func:`~calibench.data.npz_labels.read_labels`, the same as an ``.npz`` given straight to a
command, so import accepts exactly what calibration and evaluation read later.
"""

from __future__ import annotations

from calibench.data.annotations import Task
from calibench.data.npz import NpzDataset
from calibench.data.npz_labels import LabelKind, read_labels
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
    labels = read_labels(path, count, shown)
    extra = {"npz": rel, "arrays": arrays, "labels": labels.describe() if labels else None}
    if labels is None or labels.kind is not LabelKind.CLASS:
        # Labels other than class indices stay in the .npz, read from there by the dataset.
        return Layout(Task.TENSORS, "npz", [], [Candidate(rel) for _ in range(count)], extra=extra)
    samples = [Candidate(rel, label=int(label)) for label in labels.values]
    return Layout(Task.TENSORS, "npz", labels.classes, samples, extra=extra)
