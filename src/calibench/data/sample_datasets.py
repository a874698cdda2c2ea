"""Tiny datasets in every layout import understands, written on the fly.

The import and reading tests (and anyone trying calibench without data) need small, exact
datasets whose truth is known: each writer here returns the folder it wrote and uses images a
few pixels wide, one flat colour per class, so a read-back can be checked pixel by pixel.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def write_image(
    path: Path, size: tuple[int, int] = (12, 8), color: tuple[int, int, int] = RED
) -> Path:
    """A flat-colour image of ``size`` (width, height); the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def class_folders(root: Path) -> Path:
    """``cat/`` (red) and ``dog/`` (blue, one image nested a level deeper)."""
    write_image(root / "cat" / "1.png", (12, 8), RED)
    write_image(root / "cat" / "2.jpg", (16, 10), RED)
    write_image(root / "dog" / "1.png", (12, 8), BLUE)
    write_image(root / "dog" / "more" / "2.bmp", (20, 30), BLUE)
    return root


def labels_file(root: Path) -> Path:
    """``images/*.png`` with ``val.txt`` (integer labels) and ``classes.txt``."""
    for name, color in (("a", RED), ("b", GREEN), ("c", BLUE)):
        write_image(root / "images" / f"{name}.png", (10, 10), color)
    (root / "val.txt").write_text("images/a.png 0\nimages/b.png 1\nimages/c.png 2\n")
    (root / "classes.txt").write_text("red\ngreen\nblue\n")
    return root


COCO_BOXES = {
    "1.jpg": [([2, 3, 4, 5], 3, 0), ([0, 0, 6, 6], 7, 1)],  # (xywh, category id, iscrowd)
    "2.jpg": [([1, 1, 10, 8], 1, 0)],
    "3.jpg": [],
}
COCO_CATEGORIES = [
    {"id": 7, "name": "zebra"},
    {"id": 1, "name": "person"},
    {"id": 3, "name": "car"},
]


def coco(root: Path) -> Path:
    """``annotations/instances_val.json`` and ``val/*.jpg``, sparse unsorted category ids."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (name, boxes) in enumerate(COCO_BOXES.items(), 1):
        write_image(root / "val" / name, (32, 24), GREEN)
        images.append({"id": image_id, "file_name": name, "width": 32, "height": 24})
        for bbox, category, crowd in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": bbox,
                    "iscrowd": crowd,
                }
            )
    data = {"images": images, "annotations": annotations, "categories": COCO_CATEGORIES}
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_val.json").write_text(json.dumps(data))
    return root


def voc_xml(filename: str, objects: list[tuple[str, list[int], int]]) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
        f"<xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax>"
        "</bndbox></object>"
        for name, b, difficult in objects
    )
    return (
        f"<annotation><filename>{filename}</filename>"
        f"<size><width>30</width><height>20</height></size>{body}</annotation>"
    )


def voc(root: Path) -> Path:
    """``VOCdevkit/VOC2007`` with two images, one difficult object, a ``val`` split."""
    home = root / "VOCdevkit" / "VOC2007"
    (home / "Annotations").mkdir(parents=True)
    (home / "ImageSets" / "Main").mkdir(parents=True)
    objects = {
        "000001": [("dog", [1, 2, 10, 12], 0), ("cat", [5, 5, 20, 15], 1)],
        "000002": [("bird", [3, 3, 8, 9], 0)],
    }
    for stem, objs in objects.items():
        write_image(home / "JPEGImages" / f"{stem}.jpg", (30, 20), BLUE)
        (home / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", objs))
    (home / "ImageSets" / "Main" / "val.txt").write_text("000002\n")
    (home / "ImageSets" / "Main" / "train.txt").write_text("000001\n")
    (home / "ImageSets" / "Main" / "dog_train.txt").write_text("000001  1\n")
    return root


def tensors(path: Path, labels: bool = True) -> Path:
    """An .npz with ``input`` float32 [5, 3, 4, 4] = sample index, and ``labels`` 0..4 % 3."""
    x = np.broadcast_to(np.arange(5, dtype=np.float32)[:, None, None, None], (5, 3, 4, 4))
    arrays: dict[str, Any] = {"input": np.ascontiguousarray(x)}
    if labels:
        arrays["labels"] = np.arange(5) % 3
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def pack(folder: Path, archive: Path, prefix: str = "") -> Path:
    """Pack every file under ``folder`` into a .zip or .tar(.gz), under ``prefix/``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    names = [str(Path(prefix) / p.relative_to(folder)) for p in files]
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path, name in zip(files, names, strict=True):
                out.write(path, name)
    else:
        gz = archive.name.endswith(("gz", ".tgz"))
        with tarfile.open(archive, "w:gz") if gz else tarfile.open(archive, "w") as tar:
            for path, name in zip(files, names, strict=True):
                tar.add(path, name)
    return archive
