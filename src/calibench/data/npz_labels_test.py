"""Labels of any shape in an .npz: read the same given straight to a command and imported."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibench.data.annotated import open_dataset
from calibench.data.annotations import Task, is_annotated
from calibench.data.importer import import_dataset
from calibench.data.npz import NpzDataset
from calibench.data.npz_labels import LabelKind, LabelledNpz, open_npz
from calibench.data.open import as_dataset
from calibench.errors import DatasetError

X = np.arange(4 * 2, dtype=np.float32).reshape(4, 2)


def _write(path: Path, **labels: Any) -> Path:
    np.savez(path, x=X, **labels)
    return path


def _both(tmp_path: Path, **labels: Any) -> tuple[Any, Any]:
    """The .npz opened as given, and the same file imported then opened."""
    path = _write(tmp_path / "set.npz", **labels)
    direct = as_dataset(path, ["x"])
    imported = open_dataset(import_dataset(path, tmp_path / "root").path)
    return direct, imported


@pytest.mark.parametrize(
    ("labels", "kind", "expected"),
    [
        ({"labels": np.array([2, 0, 1, 2])}, LabelKind.CLASS, [2, 0, 1, 2]),
        ({"labels": np.array([0.5, -1.0, 2.0, 3.25])}, LabelKind.VALUE, [0.5, -1.0, 2.0, 3.25]),
        (
            {"labels": np.array(["ab7", "x", "", "zürich"])},
            LabelKind.TEXT,
            ["ab7", "x", "", "zürich"],
        ),
        (
            {"labels": np.array([t.encode() for t in ["ab7", "x", "", "zürich"]])},  # UTF-8
            LabelKind.TEXT,
            ["ab7", "x", "", "zürich"],
        ),
    ],
)
def test_one_label_per_sample_reads_the_same_given_or_imported(
    tmp_path: Path, labels: dict[str, Any], kind: LabelKind, expected: list[object]
) -> None:
    direct, imported = _both(tmp_path, **labels)
    assert isinstance(direct, LabelledNpz) and direct.labels.kind is kind
    for data in (direct, imported):
        assert is_annotated(data) and data.task is Task.TENSORS
        assert [data.annotation(i) for i in range(4)] == expected
        assert [type(data.annotation(i)) for i in range(4)] == [type(v) for v in expected]
        sample = data[1]
        assert sample is not None and list(sample) == ["x"]
        np.testing.assert_array_equal(sample["x"], X[1])
    assert (
        direct.classes == imported.classes == (["0", "1", "2"] if kind is LabelKind.CLASS else [])
    )


def test_fixed_shape_arrays_per_sample(tmp_path: Path) -> None:
    keypoints = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    direct, imported = _both(tmp_path, labels=keypoints)
    for data in (direct, imported):
        assert is_annotated(data) and data.classes == []
        label = data.annotation(2)
        assert isinstance(label, np.ndarray) and label.shape == (3, 2)
        np.testing.assert_array_equal(label, keypoints[2])
    assert "array [3, 2] per sample" in str(import_dataset(
        _write(tmp_path / "kp.npz", labels=keypoints), tmp_path / "root2"
    ))  # fmt: skip


def test_ragged_labels_with_offsets(tmp_path: Path) -> None:
    words = np.array(["the", "cat", "a", "dog", "ran", "far"])
    offsets = np.array([0, 2, 2, 5, 6])  # sample 1 has none
    direct, imported = _both(tmp_path, labels=words, label_offsets=offsets)
    for data in (direct, imported):
        got = [data.annotation(i).tolist() for i in range(4)]
        assert got == [["the", "cat"], [], ["a", "dog", "ran"], ["far"]]
        sample = data[0]
        assert sample is not None and list(sample) == ["x"]  # offsets are no model input


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"labels": np.zeros(3)}, "3 labels for 4 samples"),
        ({"labels": np.array([0, -1, 1, 1])}, "negative integers; class indices start at 0"),
        ({"labels": np.array([b"ok", b"\xff\xfe", b"a", b"b"])}, "sample 1 is not UTF-8"),
        ({"labels": np.zeros(6), "label_offsets": np.array([0, 2, 1, 5, 6])}, "non-decreasing"),
        ({"labels": np.zeros(6), "label_offsets": np.array([0, 2, 4, 6])}, "must hold 5"),
        ({"labels": np.zeros(6), "label_offsets": np.array([0, 1, 2, 3, 4])}, "from 0 to 6"),
        ({"label_offsets": np.array([0, 1, 2, 3, 4])}, "needs a 'labels' array"),
        ({"labels": np.array(["2020-01-01"] * 4, "datetime64[D]")}, "labels are integers"),
        ({"labels": np.array(3)}, "labels are integers"),
    ],
)
def test_bad_labels_are_refused_given_or_imported(
    tmp_path: Path, labels: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path / "bad.npz", **labels)
    with pytest.raises(DatasetError, match=message):
        open_npz(path)
    with pytest.raises(DatasetError, match=message):
        import_dataset(path, tmp_path / "root")


def test_object_labels_are_never_unpickled(tmp_path: Path) -> None:
    ragged = np.empty(4, dtype=object)
    ragged[:] = [np.zeros(1), np.zeros(2), np.zeros(3), np.zeros(4)]
    path = _write(tmp_path / "pickled.npz", labels=ragged)
    with pytest.raises(DatasetError, match="holds Python objects, which are not read"):
        open_npz(path)
    with pytest.raises(DatasetError, match="holds Python objects"):
        import_dataset(path, tmp_path / "root")


def test_an_npz_without_labels_is_not_annotated(tmp_path: Path) -> None:
    direct, imported = _both(tmp_path)
    assert isinstance(direct, NpzDataset)
    assert not is_annotated(direct) and not is_annotated(imported)
