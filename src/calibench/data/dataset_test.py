from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from calibench.config import Subset
from calibench.data.dataset import InMemoryDataset, select_subset
from calibench.data.images import ImageFolder
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError
from calibench.runtime.inputs import BatchReader, InputSpec

SPEC = [InputSpec("input", np.dtype(np.float32), ("N", 3, 8, 8))]


def test_subset_is_seeded_and_spread_over_the_whole_dataset() -> None:
    first = select_subset(1000, Subset(percent=10, seed=3))
    assert first == select_subset(1000, Subset(percent=10, seed=3))
    assert first != select_subset(1000, Subset(percent=10, seed=4))
    assert len(first) == 100 and len(set(first)) == 100
    assert min(first) < 10 and max(first) >= 990  # one pick in each tenth-of-a-percent stratum


def test_image_folder_skips_and_counts_unreadable_images(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "sub" / "a.png")
    Image.new("RGB", (10, 10), (0, 255, 0)).save(tmp_path / "b.jpg")
    (tmp_path / "c.bmp").write_bytes(b"BM broken")
    good = tmp_path / "d.jpg"
    Image.new("RGB", (16, 16)).save(good)
    good.write_bytes(good.read_bytes()[:40])  # truncated JPEG
    folder = ImageFolder(tmp_path)
    folder.bind("input", Preprocess(resize=8, crop=(8, 8)))
    reader = BatchReader(folder, SPEC, batch_size=4)
    batches = list(reader.batches(range(len(folder))))
    assert len(folder) == 4
    assert sum(len(i) for i, _ in batches) == 2 and len(reader.skipped) == 2
    first = batches[0][1]["input"]
    assert first.shape == (2, 3, 8, 8)
    # Sorted order: b.jpg (green) first; its green channel is scaled to 1, red to 0.
    np.testing.assert_allclose(first[0, 1], 1.0, atol=0.02)
    np.testing.assert_allclose(first[0, 0], 0.0, atol=0.02)


def test_preprocess_layouts_and_colour_order() -> None:
    image = Image.new("RGB", (4, 2), (10, 20, 30))
    nhwc = Preprocess(layout="NHWC", color="BGR", scale=1.0).apply(image)
    assert nhwc.shape == (2, 4, 3) and list(nhwc[0, 0]) == [30, 20, 10]
    normalised = Preprocess(mean=(10, 20, 30), std=(2, 2, 2), scale=1.0).apply(image)
    assert normalised.shape == (3, 2, 4) and np.all(normalised == 0)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ({"image": np.zeros((3, 8, 8), np.float32)}, "no array for model input 'input'"),
        ({"input": np.zeros((8, 8), np.float32)}, "expects rank 4"),
        ({"input": np.zeros((3, 9, 8), np.float32)}, "axis 2 differs"),
        ({"input": np.zeros((3, 8, 8), np.int64)}, "takes float32 but sample 0 holds int64"),
    ],
)
def test_samples_that_do_not_fit_the_model_are_explained(sample: dict, message: str) -> None:
    reader = BatchReader(InMemoryDataset([sample], ["input"]), SPEC, batch_size=1)
    with pytest.raises(DatasetError, match=message):
        list(reader.batches([0]))


def test_npz_is_memory_mapped_when_stored_and_loaded_when_compressed(tmp_path: Path) -> None:
    from calibench.data.npz import NpzDataset

    x = np.random.default_rng(0).normal(size=(6, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "plain.npz", input=x, labels=np.arange(6))
    np.savez_compressed(tmp_path / "packed.npz", input=x)
    plain, packed = NpzDataset(tmp_path / "plain.npz"), NpzDataset(tmp_path / "packed.npz")
    assert isinstance(plain.arrays["input"], np.memmap) and list(plain.arrays) == ["input"]
    for dataset in (plain, packed):
        sample = dataset[4]
        assert sample is not None and np.array_equal(sample["input"], x[4])


def test_npz_problems_are_explained(tmp_path: Path) -> None:
    from calibench.data.npz import NpzDataset

    (tmp_path / "fake.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        NpzDataset(tmp_path / "fake.npz")
    np.savez(tmp_path / "ragged.npz", a=np.zeros((3, 2)), b=np.zeros((4, 2)))
    with pytest.raises(DatasetError, match="same number of samples"):
        NpzDataset(tmp_path / "ragged.npz")
