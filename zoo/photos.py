"""Natural photographs for calibrating and evaluating ImageNet models, fully offline.

Calibration quality depends on realistic activation statistics, which random noise does not
give. The sources are the colour photographs that ship *inside* the scikit-image and
scikit-learn wheels (the skimage images that need ``pooch`` + network are deliberately left
out), augmented with random-resized crops and flips so that a few photos yield many distinct,
deterministic samples.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

# Bundled in the scikit-image wheel (no pooch/network needed), RGB uint8.
_SKIMAGE_SOURCES: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],  # type: ignore[no-untyped-call]
}


@functools.cache
def source_images() -> tuple[tuple[str, np.ndarray], ...]:
    """All source photos as (name, RGB uint8 HxWx3), loaded once per process."""
    images = [(name, load()) for name, load in _SKIMAGE_SOURCES.items()]
    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images, strict=True):
        images.append((Path(filename).stem, image))  # china, flower
    for name, image in images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"source photo {name!r} is not RGB uint8: {image.shape} {image.dtype}")
    return tuple(images)


def _random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """RandomResizedCrop-style sample: 10-100% of the area, aspect 3/4..4/3, optional h-flip."""
    height, width = image.shape[:2]
    for _ in range(10):
        area = height * width * rng.uniform(0.1, 1.0)
        aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        crop_w = round(np.sqrt(area * aspect))
        crop_h = round(np.sqrt(area / aspect))
        if crop_w <= width and crop_h <= height:
            break
    else:  # fall back to the largest centred square
        crop_w = crop_h = min(height, width)
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = Image.fromarray(image[top : top + crop_h, left : left + crop_w])
    crop = crop.resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop, dtype=np.uint8)


def natural_crops(n: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """``n`` random crops of the source photos, uint8 RGB [n, size, size, 3].

    Sources are visited in shuffled rounds so every photo is used about equally; the output is a
    pure function of (n, size, seed), and a larger ``n`` extends a smaller one's prefix.
    """
    if n < 0 or size <= 0:
        raise ValueError(f"need n >= 0 and size > 0, got n={n}, size={size}")
    sources = source_images()
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    order: list[int] = []
    for i in range(n):
        if not order:
            order = [int(j) for j in rng.permutation(len(sources))]
        out[i] = _random_crop(sources[order.pop()][1], size, rng)
    return out


def imagenet_preprocess(crops: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW, scaled 1/255 then ImageNet mean/std normalised."""
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected NHWC RGB crops, got shape {crops.shape}")
    x = (crops.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def write_image_folder(folder: Path, n: int, size: int = 256, seed: int = 0) -> list[Path]:
    """Write ``n`` crops as an image-folder dataset and return the file paths, sorted.

    Files are spread over two subfolders, each holding both ``.jpg`` and ``.png``, which is
    what a recursive folder loader must cope with in practice.
    """
    folder = Path(folder)
    subfolders = ("set_a", "set_b")
    paths: list[Path] = []
    for i, crop in enumerate(natural_crops(n, size=size, seed=seed)):
        sub = folder / subfolders[i % len(subfolders)]
        sub.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(crop)
        if (i // 2) % 2 == 0:
            path = sub / f"img_{i:05d}.jpg"
            image.save(path, quality=90)
        else:
            path = sub / f"img_{i:05d}.png"
            image.save(path)
        paths.append(path)
    return sorted(paths)
