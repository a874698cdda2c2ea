import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from calibench.data import sample_datasets as sd
from calibench.data.annotations import Task
from calibench.data.importer import ImportResult, import_dataset
from calibench.data.manifest import MANIFEST_NAME, read_manifest
from calibench.errors import DatasetError


def _labels(result: ImportResult) -> dict[str, int]:
    return {s["path"]: s["label"] for s in read_manifest(result.path).samples}


def _nothing_left(root: Path) -> bool:
    """No dataset and no hidden temporary folder stayed behind in ``root``."""
    return not root.exists() or not any(root.iterdir())


def test_class_folders_are_classes_in_sorted_order(tmp_path: Path) -> None:
    source = sd.class_folders(tmp_path / "pets")
    (source / "zebra").mkdir()  # an empty class still takes its index, as in torchvision
    sd.write_image(source / ".thumbs" / "x.png")  # hidden: ignored
    (source / ".DS_Store").write_bytes(b"junk")
    result = import_dataset(source, tmp_path / "root")
    assert result.name == "pets" and result.path == tmp_path / "root" / "pets"
    assert (result.task, result.format) == (Task.CLASSIFICATION, "class-folders")
    assert result.classes == ["cat", "dog", "zebra"]
    assert _labels(result) == {"cat/1.png": 0, "cat/2.jpg": 0, "dog/1.png": 1, "dog/more/2.bmp": 1}
    assert result.image_size == {"min": [8, 12], "max": [30, 20]}
    assert [(p.kind, p.path) for p in result.problems] == [("empty-class", "zebra")]
    assert not (result.path / ".thumbs").exists()
    text = result.render()
    assert "classification (ImageNet-style class folders)" in text
    assert "classes:    3: cat, dog, zebra" in text and "8×12 to 30×20" in text
    assert "empty-class: zebra" in text


def test_labels_file_with_class_names_and_every_kind_of_mismatch(tmp_path: Path) -> None:
    source = sd.labels_file(tmp_path / "val")
    sd.write_image(source / "images" / "extra.png")
    sd.write_image(source / "images" / "stray.png")  # in no line of the labels file
    (source / "val.txt").write_text(
        "images/a.png 0\n"
        "images/b.png green\n"  # a class name works as well as an index
        "c.png 2\n"  # a bare file name is found by name
        "images/gone.png 1\n"  # missing file
        "images/a.png 1\n"  # listed twice
        "images/extra.png 7\n"  # no class 7
        "just some words\n"
    )
    result = import_dataset(source, tmp_path / "root", name="colours")
    assert result.format == "labels-file" and result.classes == ["red", "green", "blue"]
    assert _labels(result) == {"images/a.png": 0, "images/b.png": 1, "images/c.png": 2}
    kinds = {p.kind: p.path for p in result.problems}
    assert kinds == {
        "bad-line": "val.txt",
        "missing-file": "images/gone.png",
        "duplicate-label": "images/a.png",
        "unknown-label": "images/extra.png",
        "unlabelled-image": "images/stray.png",
    }
    assert result.summary()["problems"]["by_kind"]["missing-file"] == 1


def test_labels_file_with_names_and_no_class_file_sorts_the_names(tmp_path: Path) -> None:
    for name in ("x", "y", "z"):
        sd.write_image(tmp_path / "src" / f"{name}.jpg", (8, 8))
    (tmp_path / "src" / "labels.txt").write_text("x.jpg dog\ny.jpg cat\nz.jpg dog\n")
    result = import_dataset(tmp_path / "src", tmp_path / "root")
    assert result.classes == ["cat", "dog"]
    assert _labels(result) == {"x.jpg": 1, "y.jpg": 0, "z.jpg": 1}
    assert result.problems == []


def test_coco_ids_become_contiguous_indices_and_boxes_xyxy(tmp_path: Path) -> None:
    source = sd.coco(tmp_path / "coco")
    (source / "val" / "3.jpg").unlink()  # listed in the JSON, missing on disk
    result = import_dataset(source, tmp_path / "root")
    assert (result.task, result.format) == (Task.DETECTION, "coco")
    manifest = read_manifest(result.path)
    assert manifest.classes == ["person", "car", "zebra"] and manifest.class_ids == [1, 3, 7]
    first, second = manifest.samples
    assert first["path"] == "val/1.jpg" and (first["height"], first["width"]) == (24, 32)
    assert first["boxes"] == [[2, 3, 6, 8], [0, 0, 6, 6]] and first["labels"] == [1, 2]
    assert first["ignore"] == [False, True] and first["id"] == 1  # the crowd box is flagged
    assert second["boxes"] == [[1, 1, 11, 9]] and second["labels"] == [0]
    assert [(p.kind, p.path) for p in result.problems] == [("missing-file", "3.jpg")]


def test_voc_classes_difficult_objects_and_splits(tmp_path: Path) -> None:
    result = import_dataset(sd.voc(tmp_path / "voc"), tmp_path / "root")
    assert (result.task, result.format) == (Task.DETECTION, "voc")
    manifest = read_manifest(result.path)
    assert manifest.classes == ["bird", "cat", "dog"]
    one, two = manifest.samples
    assert one["path"] == "VOCdevkit/VOC2007/JPEGImages/000001.jpg" and one["id"] == "000001"
    assert one["boxes"] == [[1, 2, 10, 12], [5, 5, 20, 15]] and one["labels"] == [2, 1]
    assert one["ignore"] == [False, True]
    assert "ignore" not in two and two["labels"] == [0]
    assert manifest.splits == {"train": [0], "val": [1]}
    assert result.problems == []


def test_a_plain_image_folder_is_not_annotated(tmp_path: Path) -> None:
    sd.write_image(tmp_path / "photos" / "a.png")
    sd.write_image(tmp_path / "photos" / "deep" / "b.jpg")
    result = import_dataset(tmp_path / "photos", tmp_path / "root")
    assert (result.task, result.classes) == (Task.NOT_ANNOTATED, [])
    assert [s["path"] for s in read_manifest(result.path).samples] == ["a.png", "deep/b.jpg"]


@pytest.mark.parametrize("labels", [True, False])
def test_npz_imports_as_tensors(tmp_path: Path, labels: bool) -> None:
    result = import_dataset(sd.tensors(tmp_path / "x.npz", labels=labels), tmp_path / "root")
    assert (result.task, result.format, result.samples) == (Task.TENSORS, "npz", 5)
    assert result.arrays == {"input": {"shape": [5, 3, 4, 4], "dtype": "float32"}}
    manifest = read_manifest(result.path)
    assert (result.path / "x.npz").is_file() and manifest.npz == "x.npz"
    if labels:
        assert result.classes == ["0", "1", "2"]
        assert [s["label"] for s in manifest.samples] == [0, 1, 2, 0, 1]
    else:
        assert manifest.samples == [{}] * 5


def test_npz_labels_must_be_one_per_sample(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", input=np.zeros((4, 2)), labels=np.zeros(3))
    with pytest.raises(DatasetError, match="3 labels for 4 samples; give one per sample"):
        import_dataset(tmp_path / "bad.npz", tmp_path / "root")
    assert _nothing_left(tmp_path / "root")


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_an_archive_wrapping_one_folder_is_read_from_inside(tmp_path: Path, suffix: str) -> None:
    folder = sd.class_folders(tmp_path / "pets")
    archive = sd.pack(folder, tmp_path / f"pets-v2{suffix}", prefix="pets/train")
    result = import_dataset(archive, tmp_path / "root")
    assert result.name == "pets-v2" and result.classes == ["cat", "dog"]
    assert _labels(result)["pets/train/dog/more/2.bmp"] == 1


def test_unreadable_images_are_skipped_and_listed(tmp_path: Path) -> None:
    source = sd.class_folders(tmp_path / "pets")
    jpg = source / "cat" / "2.jpg"
    jpg.write_bytes(jpg.read_bytes()[:60])  # truncated JPEG
    (source / "dog" / "1.png").write_bytes(b"\x89PNG not really")
    result = import_dataset(source, tmp_path / "root")
    assert sorted(_labels(result)) == ["cat/1.png", "dog/more/2.bmp"]
    assert sorted((p.kind, p.path) for p in result.problems) == [
        ("unreadable-image", "cat/2.jpg"),
        ("unreadable-image", "dog/1.png"),
    ]
    assert "problems:   2 (unreadable-image 2)" in result.render()


def test_an_import_left_empty_fails_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "broken"
    for name in ("a.jpg", "b.png"):
        sd.write_image(source / name).write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="no usable sample .* nothing was imported"):
        import_dataset(source, tmp_path / "root")
    assert _nothing_left(tmp_path / "root")


def test_a_hostile_archive_import_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("cat/1.png", sd.write_image(tmp_path / "1.png").read_bytes())
        out.writestr("../../escape.png", b"x")
    with pytest.raises(DatasetError, match="climbs out"):
        import_dataset(archive, tmp_path / "root")
    assert _nothing_left(tmp_path / "root") and not (tmp_path / "escape.png").exists()


def test_a_truncated_archive_import_leaves_nothing(tmp_path: Path) -> None:
    archive = sd.pack(sd.class_folders(tmp_path / "pets"), tmp_path / "pets.tar")
    with tarfile.open(archive) as tar:
        last = tar.getmembers()[-1]
    archive.write_bytes(archive.read_bytes()[: last.offset_data + 10])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        import_dataset(archive, tmp_path / "root")
    assert _nothing_left(tmp_path / "root")


def test_names_types_and_places_that_are_refused(tmp_path: Path) -> None:
    source = sd.class_folders(tmp_path / "pets")
    root = tmp_path / "root"
    import_dataset(source, root)
    with pytest.raises(DatasetError, match="already holds a dataset named 'pets'"):
        import_dataset(source, root)
    with pytest.raises(DatasetError, match="cannot name a dataset folder"):
        import_dataset(source, root, name="../up")
    with pytest.raises(DatasetError, match="does not look like a detection dataset"):
        import_dataset(source, root, name="det", kind="detection")
    with pytest.raises(DatasetError, match="unknown dataset type 'segmentation'"):
        import_dataset(source, root, name="seg", kind="segmentation")
    with pytest.raises(DatasetError, match="lies inside the source"):
        import_dataset(source, source / "datasets")
    with pytest.raises(DatasetError, match="not found"):
        import_dataset(tmp_path / "nowhere", root)
    assert sorted(p.name for p in root.iterdir()) == ["pets"]
    plain = import_dataset(source, root, name="plain", kind="not-annotated")
    assert (plain.task, plain.samples) == (Task.NOT_ANNOTATED, 4)


def test_images_beside_class_folders_are_classes_only_when_asked(tmp_path: Path) -> None:
    source = sd.class_folders(tmp_path / "pets")
    sd.write_image(source / "loose.png")
    assert import_dataset(source, tmp_path / "root").task is Task.NOT_ANNOTATED
    asked = import_dataset(source, tmp_path / "root", name="asked", kind="classification")
    assert asked.format == "class-folders" and asked.samples == 4
    assert [(p.kind, p.path) for p in asked.problems] == [("unlabelled-image", "loose.png")]


def test_the_manifest_reloads_into_the_same_result(tmp_path: Path) -> None:
    result = import_dataset(sd.coco(tmp_path / "coco"), tmp_path / "root")
    again = ImportResult.load(result.path)
    assert again == ImportResult.load(result.path / MANIFEST_NAME) == result
    summary = json.loads(json.dumps(result.summary()))
    assert summary["task"] == "detection" and summary["samples"] == 3
    assert summary["classes"] == 3 and summary["class_names"] == ["person", "car", "zebra"]
    text = (result.path / MANIFEST_NAME).read_text()
    assert json.loads(text)["schema"] == "calibench-dataset"
    assert '    {"path": "val/1.jpg"' in text  # one sample per line
