"""Fashion-MNIST written as class folders imports with every label intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from calibench.data.annotated import open_dataset
from calibench.data.importer import import_dataset
from calibench.data.preprocess import Preprocess
from zoo.fashion import load_fashion_mnist
from zoo.fashion_folder import class_folder_name, write_fashion_imagenet_folder


def test_fashion_folder_imports_with_labels_and_pixels_round_tripping(tmp_path: Path) -> None:
    out = write_fashion_imagenet_folder(tmp_path / "fashion", "test", n_per_class=5)
    assert class_folder_name(0) == "0_T-shirt_top" and class_folder_name(9) == "9_Ankle_boot"
    result = import_dataset(out, tmp_path / "root")
    assert result.samples == 50 and result.problems == []
    assert result.classes == [class_folder_name(i) for i in range(10)]
    assert result.image_size == {"min": [28, 28], "max": [28, 28]}

    images, labels = load_fashion_mnist("test")
    data = open_dataset(result.path, Preprocess(channels=1, color="GRAY", scale=1.0), "input")
    for i in range(len(data)):
        index = int(Path(data.info(i).path or "").stem)  # files are named by dataset index
        assert data.annotation(i) == labels[index]
        sample = data[i]
        assert sample is not None
        np.testing.assert_array_equal(sample["input"][0], images[index].astype(np.float32))
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    assert all((out / class_folder_name(c) / f"{firsts[c]:04d}.png").is_file() for c in range(10))
