"""A folder of images (searched recursively) as a not-annotated dataset."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from calibench.data.dataset import Sample
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
UNREADABLE_IMAGE = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,  # a header declaring more pixels than Pillow's limit
)
"""What Pillow raises on a file that is not a readable image: the image is skipped and
counted, never the end of the run."""


def read_image(path: Path, preprocess: Preprocess) -> np.ndarray | None:
    """``path`` decoded and prepared as a model input, or ``None`` when it is not a readable
    image (:data:`UNREADABLE_IMAGE`, a decompression bomb included). Every dataset of images
    reads through here, so all of them refuse the same files."""
    try:
        with Image.open(path) as image:
            image.load()
            return preprocess.apply(image)
    except UNREADABLE_IMAGE:
        return None


class ImageFolder:
    """Every jpg/png/bmp under ``root`` in sorted order; unreadable files give ``None``."""

    def __init__(
        self, root: Path, preprocess: Preprocess | None = None, input_name: str | None = None
    ) -> None:
        self.root = Path(root)
        self.files = sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if not self.files:
            raise DatasetError(f"{self.root} holds no images (looked for jpg, png, bmp)")
        self.preprocess = preprocess or Preprocess()
        self.input_name = input_name
        self.unreadable: list[Path] = []

    def bind(self, input_name: str, preprocess: Preprocess) -> None:
        """Fix the model input these images feed and how they are prepared for it."""
        self.input_name = input_name
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample | None:
        if self.input_name is None:
            raise DatasetError("the image folder is not bound to a model input yet")
        path = self.files[index]
        tensor = read_image(path, self.preprocess)
        if tensor is None:
            self.unreadable.append(path)
            return None
        return {self.input_name: tensor}

    def describe(self) -> dict[str, Any]:
        return {"kind": "image folder", "path": str(self.root), "images": len(self.files)}
