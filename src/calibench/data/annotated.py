"""An imported dataset, read back through its manifest as an :class:`AnnotatedDataset`.

Everything import worked out (which files, which labels, which boxes, image sizes) comes from
the manifest, so reading needs no format parsing and sees exactly the samples import checked.
Images go through the same :class:`~calibench.data.preprocess.Preprocess` as an image folder;
tensors datasets are served by :class:`~calibench.data.npz.NpzDataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from calibench.data.annotations import Annotation, Detections, SampleInfo, Task
from calibench.data.dataset import Sample
from calibench.data.images import read_image
from calibench.data.manifest import Manifest, manifest_path, read_manifest
from calibench.data.npz import NpzDataset
from calibench.data.npz_labels import NpzLabels, read_labels
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError


def open_dataset(
    path: Path, preprocess: Preprocess | None = None, input_name: str | None = None
) -> ImportedDataset:
    """The imported dataset at ``path`` (its folder, or its ``calibench-dataset.json``)."""
    manifest = read_manifest(path)
    return ImportedDataset(manifest_path(path).parent, manifest, preprocess, input_name)


class ImportedDataset:
    """Samples, truth and origin of each sample of an imported dataset."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        preprocess: Preprocess | None = None,
        input_name: str | None = None,
    ) -> None:
        self.root = Path(folder)
        self.manifest = manifest
        self.name = manifest.name
        self.task: Task = manifest.task
        self.classes: list[str] = list(manifest.classes)
        self.preprocess = preprocess or Preprocess()
        self.input_name = input_name
        self.needs_binding = self.task is not Task.TENSORS
        """Tensors already are model inputs; only images need an input and a preprocessing."""
        self.unreadable: list[Path] = []
        self._samples = manifest.samples
        self._npz: NpzDataset | None = None
        self._labels: NpzLabels | None = None
        self.labelled = self.task in (Task.CLASSIFICATION, Task.DETECTION)
        """Whether accuracy can be measured on it (tensors: when the .npz had labels)."""
        if self.task is Task.TENSORS:
            assert manifest.npz is not None
            self._npz = NpzDataset(self.root / manifest.npz)
            if len(self._npz) != len(self._samples):
                raise DatasetError(
                    f"{self._npz.path} holds {len(self._npz)} samples but the manifest lists "
                    f"{len(self._samples)}; it changed since import, import it again"
                )
            if manifest.labels is not None:
                self._labels = read_labels(self._npz.path, len(self._npz))
                if self._labels is None or self._labels.key != manifest.labels["key"]:
                    raise DatasetError(
                        f"{self._npz.path} no longer holds the labels it was imported with; "
                        "import it again"
                    )
            self.labelled = self._labels is not None or bool(self.classes)

    def bind(self, input_name: str, preprocess: Preprocess) -> None:
        """Fix the model input these images feed and how they are prepared for it."""
        self.input_name = input_name
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self._samples)

    def __getitem__(self, index: int) -> Sample | None:
        if self._npz is not None:
            return self._npz[index]
        if self.input_name is None:
            raise DatasetError(f"the dataset {self.name!r} is not bound to a model input yet")
        path = self._path(index)
        tensor = read_image(path, self.preprocess)
        if tensor is None:
            self.unreadable.append(path)
            return None
        return {self.input_name: tensor}

    def annotation(self, index: int) -> Annotation:
        """The class index, the boxes (original pixels, ``ignore``-flagged ones left out: see
        :meth:`info`), the label of any shape an .npz gave (``data.npz_labels``), or ``None``
        for a dataset without annotations."""
        if self._labels is not None:
            return self._labels.annotation(index)
        sample = self._samples[index]
        if self.task is Task.DETECTION:
            return _detections(sample, keep=False)
        label = sample.get("label")
        return None if label is None else int(label)

    def info(self, index: int) -> SampleInfo:
        """Where sample ``index`` came from. For detection, ``extra`` holds the source's image
        ``id`` and the ``ignored`` boxes (COCO crowds, VOC difficult objects) when there are."""
        sample = self._samples[index]
        extra: dict[str, object] = {}
        if "id" in sample:
            extra["id"] = sample["id"]
        if self.task is Task.DETECTION and any(sample.get("ignore", [])):
            extra["ignored"] = _detections(sample, keep=True)
        if self._npz is not None:
            return SampleInfo(index=index, path=str(self._npz.path), extra=extra)
        return SampleInfo(
            index=index,
            path=str(self._path(index)),
            height=int(sample["height"]),
            width=int(sample["width"]),
            preprocess=self.preprocess,
            extra=extra,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "imported dataset",
            "name": self.name,
            "path": str(self.root),
            "task": self.task.value,
            "format": self.manifest.format,
            "samples": len(self),
            "classes": len(self.classes),
            **({"labels": self.manifest.labels} if self.manifest.labels else {}),
        }

    def _path(self, index: int) -> Path:
        return self.root.joinpath(*str(self._samples[index]["path"]).split("/"))


def _detections(sample: dict[str, Any], keep: bool) -> Detections:
    """The boxes whose ``ignore`` flag equals ``keep``."""
    flags = np.asarray(sample.get("ignore") or [False] * len(sample["labels"]), dtype=bool)
    chosen = flags == keep
    boxes = np.asarray(sample["boxes"], dtype=np.float32).reshape(-1, 4)[chosen]
    labels = np.asarray(sample["labels"], dtype=np.int64).reshape(-1)[chosen]
    return Detections(boxes=boxes, labels=labels)
