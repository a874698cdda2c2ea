"""What an import produced, for people (``render``) and for scripts (``summary``).

Built from the manifest, so ``calibench dataset info`` shows an old import exactly as the import
itself did.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calibench.data.annotations import Task
from calibench.data.manifest import MANIFEST_NAME, Manifest, Problem, manifest_path, read_manifest

FORMAT_NAMES = {
    "class-folders": "ImageNet-style class folders",
    "labels-file": "images with a labels file",
    "coco": "COCO",
    "voc": "Pascal VOC",
    "images": "image folder",
    "npz": ".npz tensors",
}
_SHOWN_CLASSES = 10
_SHOWN_PROBLEMS = 5


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    """The dataset folder (it holds the manifest)."""
    task: Task
    format: str
    samples: int
    classes: list[str]
    image_size: dict[str, list[int]] | None
    """``{"min": [h, w], "max": [h, w]}`` over all images, or ``None`` for tensors."""
    problems: list[Problem]
    arrays: dict[str, Any] | None = None
    source: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] | None = None
    """Tensors: the labels the .npz carries (``Manifest.labels``)."""

    @classmethod
    def from_manifest(cls, folder: Path, manifest: Manifest) -> ImportResult:
        return cls(
            name=manifest.name,
            path=Path(folder),
            task=manifest.task,
            format=manifest.format,
            samples=len(manifest.samples),
            classes=list(manifest.classes),
            image_size=manifest.image_size,
            problems=list(manifest.problems),
            arrays=manifest.arrays,
            source=manifest.source,
            splits={k: len(v) for k, v in (manifest.splits or {}).items()},
            labels=manifest.labels,
        )

    @classmethod
    def load(cls, path: Path) -> ImportResult:
        """The result of an earlier import: ``path`` is the dataset folder or its manifest."""
        return cls.from_manifest(manifest_path(path).parent, read_manifest(path))

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def problem_counts(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems))

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "source": self.source,
            "task": self.task.value,
            "format": self.format,
            "samples": self.samples,
            "classes": len(self.classes),
            "class_names": self.classes[:_SHOWN_CLASSES],
            "image_size": self.image_size,
            "arrays": self.arrays,
            "splits": self.splits,
            "labels": self.labels,
            "problems": {
                "count": len(self.problems),
                "by_kind": self.problem_counts(),
                "first": [p.to_json() for p in self.problems[:_SHOWN_PROBLEMS]],
            },
        }

    def render(self) -> str:
        lines = [
            f"dataset {self.name!r} in {self.path}",
            f"  type:       {self.task.value} ({FORMAT_NAMES.get(self.format, self.format)})",
            f"  samples:    {self.samples}",
        ]
        if self.classes:
            shown = ", ".join(self.classes[:_SHOWN_CLASSES])
            more = ", …" if len(self.classes) > _SHOWN_CLASSES else ""
            lines.append(f"  classes:    {len(self.classes)}: {shown}{more}")
        if self.image_size:
            (h0, w0), (h1, w1) = self.image_size["min"], self.image_size["max"]
            size = f"{h0}×{w0}" if (h0, w0) == (h1, w1) else f"{h0}×{w0} to {h1}×{w1}"
            lines.append(f"  image size: {size} (height×width)")
        for key, spec in (self.arrays or {}).items():
            lines.append(f"  array:      {key} {spec['shape']} {spec['dtype']}")
        if self.labels:
            lines.append(f"  labels:     {_labels_in_words(self.labels)}")
        if self.splits:
            lines.append("  splits:     " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        if not self.problems:
            lines.append("  problems:   none")
            return "\n".join(lines)
        counts = ", ".join(f"{kind} {n}" for kind, n in self.problem_counts().items())
        lines.append(f"  problems:   {len(self.problems)} ({counts})")
        for problem in self.problems[:_SHOWN_PROBLEMS]:
            detail = f" ({problem.detail})" if problem.detail else ""
            lines.append(f"    {problem.kind}: {problem.path}{detail}")
        if len(self.problems) > _SHOWN_PROBLEMS:
            lines.append(
                f"    … and {len(self.problems) - _SHOWN_PROBLEMS} more in {MANIFEST_NAME}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _labels_in_words(labels: dict[str, Any]) -> str:
    kind, shape, dtype = labels.get("kind"), labels.get("shape", []), labels.get("dtype")
    per_sample = {
        "class": "a class index per sample",
        "value": "a number per sample",
        "text": "a text per sample",
        "array": f"an array {shape[1:]} per sample",
        "ragged": "an array of its own length per sample (label_offsets)",
    }.get(str(kind), str(kind))
    return f"{labels.get('key')} {shape} {dtype}: {per_sample}"
