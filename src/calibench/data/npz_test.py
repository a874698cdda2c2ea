"""The .npz reader: headers are checked before anything is allocated; damage is a DatasetError."""

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibench.data.npz import NpzDataset
from calibench.errors import DatasetError


def _npz_with_header(
    path: Path, shape: tuple[int, ...], compression: int, data: bytes = b""
) -> Path:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("input.npy", header.getvalue() + data)
    return path


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_header_declaring_a_trillion_elements_is_refused_before_reading(
    tmp_path: Path, compression: int
) -> None:
    path = _npz_with_header(tmp_path / "bomb.npz", (10**12,), compression)
    assert path.stat().st_size < 400
    with pytest.raises(DatasetError, match=r"bomb\.npz.*'input'"):
        NpzDataset(path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_header_declaring_more_than_its_member_holds_is_refused(
    tmp_path: Path, compression: int
) -> None:
    path = _npz_with_header(tmp_path / "short.npz", (4, 100), compression, data=b"\0" * 16)
    with pytest.raises(DatasetError, match=r"short\.npz"):
        NpzDataset(path)


def test_a_huge_compressed_member_is_refused_by_the_byte_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import calibench.data.npz as npz

    monkeypatch.setattr(npz, "MAX_LOADED_BYTES", 1000)
    path = tmp_path / "big.npz"
    np.savez_compressed(path, input=np.zeros((10, 100), np.float32))
    with pytest.raises(DatasetError, match=r"big\.npz.*'input'.*limit"):
        NpzDataset(path)
    small = tmp_path / "small.npz"
    np.savez_compressed(small, input=np.zeros((10, 10), np.float32))
    assert len(NpzDataset(small)) == 10


def test_negative_dimensions_are_refused(tmp_path: Path) -> None:
    path = _npz_with_header(tmp_path / "neg.npz", (-4, 3), zipfile.ZIP_DEFLATED)
    with pytest.raises(DatasetError, match=r"neg\.npz"):
        NpzDataset(path)


def test_random_arrays_round_trip_stored_and_compressed(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")
    hnp = pytest.importorskip("hypothesis.extra.numpy")

    dtypes = st.sampled_from([np.float32, np.float64, np.int8, np.uint8, np.int64, np.float16])
    shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)

    @hypothesis.settings(max_examples=40, deadline=None, database=None)
    @hypothesis.given(
        arrays=st.lists(st.tuples(dtypes, shapes), min_size=1, max_size=3),
        compressed=st.booleans(),
        fortran=st.booleans(),
        data=st.data(),
    )
    def check(arrays: Any, compressed: bool, fortran: bool, data: Any) -> None:
        count = data.draw(st.integers(1, 4))
        made = {
            f"in{i}": data.draw(hnp.arrays(dtype, (count, *shape[1:])))
            for i, (dtype, shape) in enumerate(arrays)
        }
        if fortran:
            made = {k: np.asfortranarray(v) for k, v in made.items()}
        path = tmp_path / "round.npz"
        (np.savez_compressed if compressed else np.savez)(path, **made)
        read = NpzDataset(path)
        assert len(read) == count
        for index in range(count):
            sample = read[index]
            assert sample is not None and set(sample) == set(made)
            for key, array in made.items():
                np.testing.assert_array_equal(sample[key], array[index])
        del read

    check()


def test_corrupted_bytes_are_a_dataset_error_never_another_exception(tmp_path: Path) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    originals = {}
    for compressed in (False, True):
        path = tmp_path / f"orig{compressed}.npz"
        save = np.savez_compressed if compressed else np.savez
        save(path, input=np.arange(60, dtype=np.float32).reshape(5, 3, 4), labels=np.arange(5))
        originals[compressed] = path.read_bytes()

    @hypothesis.settings(max_examples=50, deadline=None, database=None)
    @hypothesis.given(
        compressed=st.booleans(),
        edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
        cut=st.one_of(st.none(), st.integers(0, 10**6)),
    )
    def check(compressed: bool, edits: list[tuple[int, int]], cut: int | None) -> None:
        raw = bytearray(originals[compressed])
        for where, value in edits:
            raw[where % len(raw)] = value
        if cut is not None:
            raw = raw[: cut % (len(raw) + 1)]
        path = tmp_path / "damaged.npz"
        path.write_bytes(bytes(raw))
        try:
            read = NpzDataset(path)
            for index in range(len(read)):
                read[index]
        except DatasetError as exc:
            assert "damaged.npz" in str(exc)

    check()


def test_import_checks_the_labels_header_too_and_names_the_users_file(tmp_path: Path) -> None:
    from calibench.data.importer import import_dataset

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<i8", "fortran_order": False, "shape": (10**12,)}
    )
    path = tmp_path / "mine.npz"
    np.savez_compressed(path, input=np.zeros((4, 2), np.float32))
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", header.getvalue())
    with pytest.raises(DatasetError, match=r"mine\.npz.*'labels'") as err:
        import_dataset(path, tmp_path / "root")
    assert ".partial" not in str(err.value) and "staging" not in str(err.value)
