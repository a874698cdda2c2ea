"""The manifest an imported dataset carries: ``calibench-dataset.json`` in its folder.

Import does the slow work once (detect the format, open every image, map labels to indices);
the manifest records the outcome so that reading the dataset later needs no format parsing and
sees exactly what import validated. It is plain JSON, one sample per line, to stay diff- and
grep-friendly on large datasets.

Schema (``"schema": "calibench-dataset"``, ``"version": 1``)::

    name, task ("classification" | "detection" | "not-annotated" | "tensors"),
    format ("class-folders" | "labels-file" | "coco" | "voc" | "images" | "npz"),
    source (what was imported), created (UTC, ISO 8601),
    classes: [name, ...]                      index = label
    class_ids: [int, ...] | null              COCO category id of each class
    image_size: {"min": [h, w], "max": [h, w]} | null
    npz: "file.npz" | null                    tensors: the arrays' file, in the folder
    arrays: {name: {"shape": [...], "dtype": "float32"}} | null
    labels: {"key", "kind", "dtype", "shape", "ragged"} | null   tensors: the labels in the
                                              .npz (kind: class, value, text, array, ragged)
    splits: {"val": [sample index, ...]} | null   VOC ImageSets/Main lists
    samples: [
      {"path": "cat/1.jpg", "height": 480, "width": 640, "label": 3},      classification
      {"path": ..., "height", "width", "boxes": [[x1, y1, x2, y2], ...],
       "labels": [int, ...], "ignore": [bool, ...] (optional), "id": ... (optional)},
      {"path": ..., "height", "width"},                                    not annotated
      {"label": 3} or {}                  tensors (other labels: read from the .npz)
    ]
    problems: [{"kind": "unreadable-image", "path": "a.jpg", "detail": "..."}, ...]

Paths are relative to the dataset folder, with ``/``; boxes are in original image pixels.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibench.data.annotations import Task
from calibench.data.staging import write_dataset_text
from calibench.errors import DatasetError

MANIFEST_NAME = "calibench-dataset.json"
SCHEMA = "calibench-dataset"
VERSION = 1


@dataclass(frozen=True)
class Problem:
    """Something import skipped or could not match; never fatal on its own."""

    kind: str
    path: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class Manifest:
    name: str
    task: Task
    format: str
    classes: list[str]
    samples: list[dict[str, Any]]
    problems: list[Problem] = field(default_factory=list)
    source: str = ""
    created: str = ""
    class_ids: list[int] | None = None
    image_size: dict[str, list[int]] | None = None
    npz: str | None = None
    arrays: dict[str, Any] | None = None
    splits: dict[str, list[int]] | None = None
    labels: dict[str, Any] | None = None
    """Tensors: what :meth:`~calibench.data.npz_labels.NpzLabels.describe` said at import."""

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "name": self.name,
            "task": self.task.value,
            "format": self.format,
            "source": self.source,
            "created": self.created,
            "classes": self.classes,
            "class_ids": self.class_ids,
            "image_size": self.image_size,
            "npz": self.npz,
            "arrays": self.arrays,
            "splits": self.splits,
            "labels": self.labels,
            "samples": self.samples,
            "problems": [p.to_json() for p in self.problems],
        }


def manifest_path(path: Path) -> Path:
    """The manifest of a dataset folder, or ``path`` itself when it names the manifest."""
    path = Path(path)
    return path / MANIFEST_NAME if path.is_dir() else path


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically; long lists get one item per line."""
    lines = []
    for key, value in manifest.to_json().items():
        if isinstance(value, list) and value and isinstance(value[0], (dict, list)):
            items = ",\n".join("    " + json.dumps(v, ensure_ascii=False) for v in value)
            text = "[\n" + items + "\n  ]"
        else:
            text = json.dumps(value, ensure_ascii=False)
        lines.append(f"  {json.dumps(key)}: {text}")
    path = Path(folder) / MANIFEST_NAME
    write_dataset_text(path, "{\n" + ",\n".join(lines) + "\n}\n")
    return path


def read_manifest(path: Path) -> Manifest:
    """Read and check a manifest (a dataset folder or the manifest file itself)."""
    file = manifest_path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(
            f"{Path(path)} is not an imported dataset (no {MANIFEST_NAME}); import it with "
            "`calibench dataset import`"
        ) from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{file} is not readable JSON ({exc}); import the dataset again"
        ) from exc
    try:
        return _parse(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"{file} is not a valid calibench dataset manifest ({exc}); import the dataset again"
        ) from exc


def _parse(data: Any) -> Manifest:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"'schema' is not {SCHEMA!r}")
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r} is not {VERSION}")
    task = Task(data["task"])
    classes = [str(c) for c in _list(data, "classes")]
    samples = _list(data, "samples")
    for index, sample in enumerate(samples):
        _check_sample(index, sample, task, len(classes))
    problems = [
        Problem(str(p["kind"]), str(p["path"]), str(p.get("detail", "")))
        for p in _list(data, "problems")
    ]
    npz = data.get("npz")
    if task is Task.TENSORS:
        if not isinstance(npz, str):
            raise ValueError("a tensors dataset needs 'npz'")
        _check_relative(npz)
    class_ids = data.get("class_ids")
    if class_ids is not None and len(class_ids) != len(classes):
        raise ValueError("'class_ids' and 'classes' differ in length")
    return Manifest(
        name=str(data["name"]),
        task=task,
        format=str(data["format"]),
        classes=classes,
        samples=samples,
        problems=problems,
        source=str(data.get("source", "")),
        created=str(data.get("created", "")),
        class_ids=[int(i) for i in class_ids] if class_ids is not None else None,
        image_size=data.get("image_size"),
        npz=npz,
        arrays=data.get("arrays"),
        splits=data.get("splits"),
        labels=_labels(data.get("labels")),
    )


def _labels(value: Any) -> dict[str, Any] | None:
    if value is not None and not (isinstance(value, dict) and isinstance(value.get("key"), str)):
        raise TypeError("'labels' must be an object naming the labels array ('key')")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise TypeError(f"{key!r} must be a list")
    return value


def _check_sample(index: int, sample: Any, task: Task, n_classes: int) -> None:
    where = f"sample {index}"
    if not isinstance(sample, dict):
        raise TypeError(f"{where} is not an object")
    if task is not Task.TENSORS:
        _check_relative(sample["path"])
        if int(sample["height"]) <= 0 or int(sample["width"]) <= 0:
            raise ValueError(f"{where} has no image size")
    labels: list[Any] = []
    if "label" in sample:
        labels = [sample["label"]]
    if task is Task.DETECTION:
        boxes, labels = sample["boxes"], sample["labels"]
        if len(boxes) != len(labels) or any(len(b) != 4 for b in boxes):
            raise ValueError(f"{where}: 'boxes' must be [x1, y1, x2, y2] lists, one per label")
        if len(sample.get("ignore", labels)) != len(labels):
            raise ValueError(f"{where}: 'ignore' needs one flag per box")
    elif task is Task.CLASSIFICATION and "label" not in sample:
        raise KeyError(f"{where} has no 'label'")
    for label in labels:
        if not isinstance(label, int) or not 0 <= label < max(n_classes, 1):
            raise ValueError(f"{where}: label {label!r} is not a class index")


def _check_relative(path: Any) -> None:
    if not isinstance(path, str) or not path:
        raise TypeError(f"path {path!r} is not a string")
    if path.startswith("/") or posixpath.normpath(path).split("/")[0] == "..":
        raise ValueError(f"path {path!r} leaves the dataset folder")
