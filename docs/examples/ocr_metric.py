"""Accuracy of a CTC text reader as 100 × (1 − CER), for ``calibench --metric``.

calibench hands the function one sample at a time: the model's outputs, each without its batch
axis (ddddocr's reader answers [T, 1, C], so this gets [T, C]), and the sample's label as the
.npz holds it (here the text the image shows).
"""

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np


@cache
def charset() -> list[str]:
    """ddddocr's characters, class 0 being the CTC blank (read without importing ddddocr)."""
    spec = importlib.util.find_spec("ddddocr")
    assert spec is not None and spec.origin is not None, "pip install ddddocr"
    path = Path(spec.origin).parent / "charsets.py"
    loader = importlib.util.spec_from_file_location("ddddocr_charsets", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return list(module.CHARSET_BETA)


def greedy_decode(logits: np.ndarray) -> str:
    """The best class at each time step; repeats merged, blanks dropped."""
    best = logits.argmax(-1)
    keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
    return "".join(charset()[i] for i in best[keep])


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def one_minus_cer(outputs: dict[str, np.ndarray], text: str) -> float:
    """100 × (1 − character error rate) of one sample, 0 at worst."""
    (logits,) = outputs.values()
    errors = edit_distance(greedy_decode(logits), text)
    return 100.0 * max(0.0, 1.0 - errors / max(len(text), 1))
