from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibench.data.open import open_for_model
from calibench.errors import DatasetError
from calibench.runtime.inputs import InputSpec


def _photos(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (20 + i, 16), (i, 0, 0)).save(folder / f"{i}.png")
    return folder


def test_images_for_a_model_they_cannot_feed_are_refused_before_any_sample(
    tmp_path: Path,
) -> None:
    photos = _photos(tmp_path / "photos")
    tokens = [
        InputSpec("input_ids", np.dtype(np.int64), ("batch", "seq")),
        InputSpec("attention_mask", np.dtype(np.int64), ("batch", "seq")),
    ]
    with pytest.raises(DatasetError, match="as integers, not pixels; 'photos' holds images"):
        open_for_model(photos, tokens, model_name="'bert'")
    four = [InputSpec("x", np.dtype(np.float32), (1, 4, 32, 32))]
    with pytest.raises(DatasetError, match="takes 4 channels"):
        open_for_model(photos, four, model_name="'rgba net'")
    crop = {"resize": 256, "crop": (200, 200)}
    three = [InputSpec("x", np.dtype(np.float32), (1, 3, 224, 224))]
    with pytest.raises(DatasetError, match="makes images 200×200"):
        open_for_model(photos, three, crop, model_name="'net'")


def test_images_that_fit_are_bound(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos")
    net = [InputSpec("x", np.dtype(np.float32), ("n", 3, 8, 8))]
    data, bound = open_for_model(photos, net, model_name="'net'")
    assert bound is not None and bound.resize == (8, 8)
    sample = data[0]
    assert sample is not None and sample["x"].shape == (3, 8, 8)
