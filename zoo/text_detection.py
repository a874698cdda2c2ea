"""A small COCO detection dataset of rendered characters, for ddddocr's text detector.

ddddocr (PyPI) ships ``common_det.onnx``, a YOLOX-style single-class detector of characters in
captchas (opset 11, input 416×416, pixels 0–255). Characters drawn with Pillow's bundled font at
known places give boxes we know exactly, so mAP can be checked by hand.
"""

from __future__ import annotations

import importlib.util
import json
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def ddddocr_detector() -> Path:
    """The detector inside the installed ddddocr wheel (``pip install --no-deps ddddocr``)."""
    spec = importlib.util.find_spec("ddddocr")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ddddocr is not installed: pip install --no-deps ddddocr==1.6.1")
    return Path(spec.origin).parent / "common_det.onnx"


def write_text_coco(folder: Path, n: int, seed: int = 0, size: int = 416) -> Path:
    """``n`` images with 3–6 characters each, and ``annotations/instances.json`` (COCO)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    glyphs = string.ascii_uppercase + string.digits
    for index in range(n):
        background = tuple(int(v) for v in rng.integers(200, 256, size=3))
        image = Image.new("RGB", (size, size), background)
        draw = ImageDraw.Draw(image)
        boxes: list[list[float]] = []
        for _ in range(int(rng.integers(3, 7))):
            font = ImageFont.load_default(size=int(rng.integers(40, 80)))
            char = glyphs[int(rng.integers(len(glyphs)))]
            for _attempt in range(20):
                x, y = (int(v) for v in rng.integers(10, size - 90, size=2))
                left, top, right, bottom = draw.textbbox((x, y), char, font=font)
                if all(right < b[0] or left > b[2] or bottom < b[1] or top > b[3] for b in boxes):
                    colour = tuple(int(v) for v in rng.integers(0, 120, size=3))
                    draw.text((x, y), char, font=font, fill=colour)
                    boxes.append([left, top, right, bottom])
                    break
        name = f"text_{index:04d}.png"
        image.save(folder / "images" / name)
        images.append({"id": index + 1, "file_name": name, "height": size, "width": size})
        for left, top, right, bottom in boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": 1,
                    "bbox": [left, top, right - left, bottom - top],
                    "area": (right - left) * (bottom - top),
                    "iscrowd": 0,
                }
            )
    instances = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "character"}],
    }
    path = folder / "annotations" / "instances.json"
    path.write_text(json.dumps(instances))
    return path
