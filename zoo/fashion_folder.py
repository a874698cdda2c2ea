"""Fashion-MNIST as an ImageNet-style folder of PNGs: real labelled images for dataset import.

The import tests and demos need a real classification dataset on disk in the most common
layout, one folder per class. Folder names start with the label (``0_T-shirt_top``) so that
sorting them, as import and torchvision do, gives back Fashion-MNIST's own label order.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.fashion import CLASSES, load_fashion_mnist


def class_folder_name(label: int) -> str:
    """``0_T-shirt_top``: the label, then the name with anything but letters, digits and ``-``
    made ``_``."""
    return f"{label}_{re.sub(r'[^A-Za-z0-9-]+', '_', CLASSES[label])}"


def write_fashion_imagenet_folder(out: Path, split: str, n_per_class: int | None) -> Path:
    """Write ``split`` ("train" or "test") as ``out/<class folder>/<index>.png``, the first
    ``n_per_class`` images of each class in file order (all when ``None``); returns ``out``."""
    images, labels = load_fashion_mnist(split)
    width = len(str(len(labels) - 1))
    for label in range(len(CLASSES)):
        folder = Path(out) / class_folder_name(label)
        folder.mkdir(parents=True, exist_ok=True)
        chosen = np.flatnonzero(labels == label)[:n_per_class]
        for index in chosen:
            Image.fromarray(images[index]).save(folder / f"{index:0{width}d}.png")
    return Path(out)
