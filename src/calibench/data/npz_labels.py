"""The labels an ``.npz`` carries beside its inputs, of whatever shape a metric needs.

Class indices are what top-k accuracy reads, but a custom metric may need the text an OCR model
should read, a value a regression should predict, or a keypoint array. The layout stays
object-free (``allow_pickle=False`` everywhere: an ``.npz`` from elsewhere must not run code):

- ``labels`` of shape ``[n]``, integers ≥ 0: class indices;
- ``labels`` of shape ``[n]``, floats or booleans: one value per sample;
- ``labels`` of shape ``[n]``, strings (``np.str_``, or UTF-8 ``np.bytes_``): one text per sample;
- ``labels`` of shape ``[n, ...]``: one fixed-shape array per sample;
- ``labels`` of shape ``[m, ...]`` with ``label_offsets`` ``[n + 1]``: a ragged array per
  sample, sample ``i`` being ``labels[label_offsets[i]:label_offsets[i + 1]]``.

The same reader serves an ``.npz`` given straight to a command and one imported as a dataset,
so both count as annotated, and hand the metric the same annotations.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from calibench.data.annotations import Annotation, SampleInfo, Task
from calibench.data.dataset import Sample
from calibench.data.npz import LABEL_KEYS, OFFSETS_KEY, NpzDataset, read_member
from calibench.errors import DatasetError

_READABLE_KINDS = "biufUS"
"""Booleans, integers, floats, text; never objects, records or dates."""


class LabelKind(str, Enum):
    CLASS = "class"
    """One integer ≥ 0 per sample: a class index (top-k accuracy reads these)."""
    VALUE = "value"
    """One number per sample (a regression target), handed to the metric as a Python number."""
    TEXT = "text"
    """One string per sample (what an OCR model should read), handed as ``str``."""
    ARRAY = "array"
    """One array of a fixed shape per sample, handed as ``np.ndarray``."""
    RAGGED = "ragged"
    """One array of its own length per sample (``label_offsets``), handed as ``np.ndarray``."""


@dataclass(frozen=True)
class NpzLabels:
    """Checked labels: every sample has one, of the kind the arrays' dtype and shape say."""

    key: str
    kind: LabelKind
    values: np.ndarray
    offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values) if self.offsets is None else len(self.offsets) - 1

    @property
    def classes(self) -> list[str]:
        """Class names (``"0"``, ``"1"``, …) for class indices; none for other labels."""
        if self.kind is not LabelKind.CLASS:
            return []
        return [str(i) for i in range(int(self.values.max(initial=-1)) + 1)]

    def annotation(self, index: int) -> Annotation:
        if self.offsets is not None:
            return np.array(self.values[self.offsets[index] : self.offsets[index + 1]])
        value = self.values[index]
        if self.kind is LabelKind.CLASS:
            return int(value)
        if self.kind is LabelKind.VALUE:
            return value.item()
        if self.kind is LabelKind.TEXT:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return np.array(value)

    def describe(self) -> dict[str, Any]:
        """What the manifest records (and ``dataset info`` shows) of these labels."""
        return {
            "key": self.key,
            "kind": self.kind.value,
            "dtype": str(self.values.dtype),
            "shape": list(self.values.shape),
            "ragged": self.offsets is not None,
        }


def read_labels(path: Path, count: int, shown: str | None = None) -> NpzLabels | None:
    """The labels of the ``.npz`` at ``path`` holding ``count`` samples, checked; ``None`` when
    it has none. Messages name the file as ``shown`` (default: ``path``)."""
    shown = shown or str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            key = next((k for k in sorted(LABEL_KEYS) if f"{k}.npy" in names), None)
            if key is None:
                if f"{OFFSETS_KEY}.npy" in names:
                    raise DatasetError(f"{shown}: '{OFFSETS_KEY}' needs a 'labels' array beside it")
                return None
            values = read_member(path, archive, archive.getinfo(f"{key}.npy"))
            offsets = None
            if f"{OFFSETS_KEY}.npy" in names:
                offsets = read_member(path, archive, archive.getinfo(f"{OFFSETS_KEY}.npy"))
    except DatasetError as exc:  # the header declares more than the file may hold, or objects
        raise DatasetError(str(exc).replace(str(path), shown)) from exc
    except Exception as exc:  # zipfile, zlib and numpy raise many types on damaged bytes
        raise DatasetError(f"{shown}: its labels array is not readable ({exc})") from exc
    return _checked(key, values, offsets, count, shown)


def _checked(
    key: str, values: np.ndarray, offsets: np.ndarray | None, count: int, shown: str
) -> NpzLabels:
    if values.dtype.kind not in _READABLE_KINDS or values.ndim == 0:
        raise DatasetError(
            f"{shown}: '{key}' holds {values.dtype} {list(values.shape)}; labels are integers, "
            "numbers, strings or arrays of them, with samples along axis 0"
        )
    if offsets is not None:
        _check_offsets(key, offsets, len(values), count, shown)
        return NpzLabels(key, LabelKind.RAGGED, values, offsets.astype(np.int64))
    if len(values) != count:
        raise DatasetError(
            f"{shown}: '{key}' holds {len(values)} labels for {count} samples; give one per "
            f"sample (or a ragged layout: all labels end to end plus '{OFFSETS_KEY}', n + 1 "
            "integers)"
        )
    if values.ndim > 1:
        return NpzLabels(key, LabelKind.ARRAY, values)
    if values.dtype.kind in "US":
        if values.dtype.kind == "S":
            _check_utf8(key, values, shown)
        return NpzLabels(key, LabelKind.TEXT, values)
    if values.dtype.kind in "iu":
        if len(values) and values.min() < 0:
            raise DatasetError(
                f"{shown}: '{key}' holds negative integers; class indices start at 0 (save "
                "values that are not class indices as floats)"
            )
        return NpzLabels(key, LabelKind.CLASS, values.astype(np.int64))
    return NpzLabels(key, LabelKind.VALUE, values)


def _check_offsets(key: str, offsets: np.ndarray, total: int, count: int, shown: str) -> None:
    ok = (
        offsets.ndim == 1
        and offsets.dtype.kind in "iu"
        and len(offsets) == count + 1
        and offsets[0] == 0
        and offsets[-1] == total
        and bool(np.all(np.diff(offsets.astype(np.int64)) >= 0))
    )
    if not ok:
        raise DatasetError(
            f"{shown}: '{OFFSETS_KEY}' must hold {count + 1} non-decreasing integers from 0 to "
            f"{total} (the length of '{key}'): sample i's labels are "
            f"{key}[offsets[i]:offsets[i + 1]]; got {offsets.dtype} {list(offsets.shape)}"
        )


def _check_utf8(key: str, values: np.ndarray, shown: str) -> None:
    for index, value in enumerate(values):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(
                f"{shown}: '{key}' of sample {index} is not UTF-8 text; save the labels as "
                "str (np.str_) or UTF-8 bytes"
            ) from None


class LabelledNpz:
    """An ``.npz`` given straight to a command, with its labels: annotated as it is, the same as
    after ``calibench dataset import`` (which reads it with the same :func:`read_labels`)."""

    task = Task.TENSORS
    needs_binding = False
    labelled = True

    def __init__(self, data: NpzDataset, labels: NpzLabels) -> None:
        self.data = data
        self.labels = labels
        self.classes: list[str] = labels.classes

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Sample | None:
        return self.data[index]

    def annotation(self, index: int) -> Annotation:
        return self.labels.annotation(index)

    def info(self, index: int) -> SampleInfo:
        return SampleInfo(index=index, path=str(self.data.path))

    def describe(self) -> dict[str, object]:
        return {**self.data.describe(), "labels": self.labels.describe()}


def open_npz(path: Path) -> NpzDataset | LabelledNpz:
    """The ``.npz`` at ``path``, annotated when it carries labels."""
    data = NpzDataset(path)
    labels = read_labels(data.path, len(data))
    return data if labels is None else LabelledNpz(data, labels)
