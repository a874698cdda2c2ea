import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibench.data import sample_datasets as sd
from calibench.data.annotated import ImportedDataset, open_dataset
from calibench.data.annotations import AnnotatedDataset, Detections, Task
from calibench.data.importer import import_dataset
from calibench.data.manifest import MANIFEST_NAME
from calibench.data.open import as_dataset, open_for_model
from calibench.data.preprocess import Preprocess
from calibench.errors import DatasetError
from calibench.runtime.inputs import InputSpec


def test_classification_reads_back_images_labels_and_origins(tmp_path: Path) -> None:
    folder = import_dataset(sd.class_folders(tmp_path / "pets"), tmp_path / "root").path
    data = open_dataset(folder)
    assert isinstance(data, AnnotatedDataset) and data.needs_binding
    assert (data.task, data.classes, len(data)) == (Task.CLASSIFICATION, ["cat", "dog"], 4)
    with pytest.raises(DatasetError, match="not bound"):
        data[0]
    preprocess = Preprocess(resize=(4, 4))
    data.bind("image", preprocess)
    labels = [data.annotation(i) for i in range(4)]
    assert labels == [0, 0, 1, 1]
    for i, label in enumerate(labels):
        sample = data[i]
        assert sample is not None and sample["image"].shape == (3, 4, 4)
        red, blue = sample["image"][0].mean(), sample["image"][2].mean()
        assert (red, blue) == pytest.approx((1.0, 0.0) if label == 0 else (0.0, 1.0), abs=0.02)
    info = data.info(3)
    assert info.path == str(folder / "dog" / "more" / "2.bmp")
    assert (info.height, info.width, info.preprocess) == (30, 20, preprocess)
    assert data.describe()["task"] == "classification" and data.describe()["samples"] == 4


def test_detection_boxes_are_in_original_pixels_with_ignored_boxes_apart(tmp_path: Path) -> None:
    folder = import_dataset(sd.coco(tmp_path / "coco"), tmp_path / "root").path
    data = open_dataset(folder / MANIFEST_NAME)
    assert data.classes == ["person", "car", "zebra"]
    first = data.annotation(0)
    assert isinstance(first, Detections)
    assert first.boxes.dtype == np.float32 and first.labels.dtype == np.int64
    np.testing.assert_array_equal(first.boxes, [[2, 3, 6, 8]])
    np.testing.assert_array_equal(first.labels, [1])
    info = data.info(0)
    assert (info.height, info.width) == (24, 32) and info.extra["id"] == 1
    ignored = info.extra["ignored"]
    assert isinstance(ignored, Detections)
    np.testing.assert_array_equal(ignored.boxes, [[0, 0, 6, 6]])
    np.testing.assert_array_equal(ignored.labels, [2])
    empty = data.annotation(2)
    assert isinstance(empty, Detections) and empty.boxes.shape == (0, 4)
    assert "ignored" not in data.info(2).extra


def test_tensors_come_from_the_npz_with_their_labels(tmp_path: Path) -> None:
    folder = import_dataset(sd.tensors(tmp_path / "t.npz"), tmp_path / "root").path
    data = open_dataset(folder)
    assert data.task is Task.TENSORS and not data.needs_binding
    sample = data[3]
    assert sample is not None and list(sample) == ["input"]
    np.testing.assert_array_equal(sample["input"], np.full((3, 4, 4), 3, np.float32))
    assert [data.annotation(i) for i in range(5)] == [0, 1, 2, 0, 1]
    assert data.info(1).path == str(folder / "t.npz") and data.info(1).preprocess is None


def test_not_annotated_images_have_no_annotation(tmp_path: Path) -> None:
    sd.write_image(tmp_path / "photos" / "a.png")
    sd.write_image(tmp_path / "photos" / "b.png")
    data = open_dataset(import_dataset(tmp_path / "photos", tmp_path / "root").path)
    assert data.task is Task.NOT_ANNOTATED and data.annotation(1) is None


def test_an_image_broken_after_import_reads_as_none(tmp_path: Path) -> None:
    folder = import_dataset(sd.class_folders(tmp_path / "pets"), tmp_path / "root").path
    (folder / "cat" / "1.png").write_bytes(b"gone bad")
    data = open_dataset(folder, Preprocess(resize=(4, 4)), "image")
    assert data[0] is None and data[1] is not None
    assert data.unreadable == [folder / "cat" / "1.png"]


def test_as_dataset_and_binding_open_imported_folders_and_refuse_archives(
    tmp_path: Path,
) -> None:
    folder = import_dataset(sd.class_folders(tmp_path / "pets"), tmp_path / "root").path
    assert isinstance(as_dataset(folder, ["x"]), ImportedDataset)
    spec = InputSpec("input", np.dtype(np.float32), ("N", 3, 6, 6))
    data, bound = open_for_model(str(folder), [spec])
    assert isinstance(data, ImportedDataset) and bound == data.preprocess
    sample = data[2]
    assert sample is not None and sample["input"].shape == (3, 6, 6)
    tensors = import_dataset(sd.tensors(tmp_path / "t.npz"), tmp_path / "root").path
    data, bound = open_for_model(tensors / MANIFEST_NAME, [spec])
    assert isinstance(data, ImportedDataset) and bound is None
    archive = sd.pack(tmp_path / "pets", tmp_path / "pets.zip")
    with pytest.raises(DatasetError, match="import it first with `calibench dataset import"):
        as_dataset(archive, ["x"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m["samples"][0].update(path="../../etc/passwd"), "leaves the dataset folder"),
        (lambda m: m["samples"][0].update(label=5), "not a class index"),
        (lambda m: m.update(version=99), "version 99"),
        (lambda m: m.update(task="segmentation"), "not a valid calibench dataset manifest"),
        (lambda m: m.update(labels=5), "'labels' must be an object naming the labels array"),
    ],
)
def test_a_damaged_manifest_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    folder = import_dataset(sd.class_folders(tmp_path / "pets"), tmp_path / "root").path
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    edit(manifest)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=message):
        open_dataset(folder)


def test_a_folder_without_manifest_is_not_an_imported_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not an imported dataset"):
        open_dataset(tmp_path)
