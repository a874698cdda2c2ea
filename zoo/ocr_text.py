"""Text images with the text they show, for ddddocr's CTC text reader and a custom metric.

ddddocr (PyPI) ships ``common.onnx``: an FP32 CTC text reader (convolutions, a bidirectional
LSTM, a Gemm over 8210 characters; opset 12). Its input is one grayscale line, 64 pixels high,
pixels 0–1, with the batch fixed at 1; its output is [T, 1, C], time first. Lowercase letters
and digits drawn with Pillow's bundled font give images whose text we know exactly: the labels
come from the rendering, stored as strings in the ``.npz`` (``labels``), the way a user's OCR
test set would be.
"""

from __future__ import annotations

import importlib.util
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HEIGHT = 64
INPUT = "input1"


def ddddocr_reader() -> Path:
    """The text reader inside the installed ddddocr wheel (``pip install --no-deps ddddocr``)."""
    spec = importlib.util.find_spec("ddddocr")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ddddocr is not installed: pip install --no-deps ddddocr==1.6.1")
    return Path(spec.origin).parent / "common.onnx"


def render(text: str, width: int = 160, size: int = 36) -> np.ndarray:
    """``text`` centred on a white line, as the reader's input: float32 [1, 64, width], 0–1."""
    image = Image.new("L", (width, HEIGHT), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    origin = ((width - (right - left)) // 2 - left, (HEIGHT - (bottom - top)) // 2 - top)
    draw.text(origin, text, font=font, fill=0)
    return (np.asarray(image, np.float32) / 255.0)[None]


def write_text_npz(path: Path, n: int, seed: int = 0, width: int = 160) -> Path:
    """``n`` lines of 4–6 random lowercase letters and digits: ``input1`` [n, 1, 64, width]
    and ``labels``, the texts, as a fixed-width string array (no Python objects)."""
    rng = np.random.default_rng(seed)
    glyphs = list(string.ascii_lowercase + string.digits)
    texts = ["".join(rng.choice(glyphs, size=int(rng.integers(4, 7)))) for _ in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path, **{INPUT: np.stack([render(t, width) for t in texts]), "labels": np.array(texts)}
    )
    return path
