"""Archive entry names that are not UTF-8 are refused in words, never a crash."""

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from calibench.data.archive import extract_archive
from calibench.data.importer import import_dataset
from calibench.errors import DatasetError

RAW = b"\xff\xfe.png"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def _tar(path: Path) -> Path:
    with tarfile.open(
        path, "w", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
    ) as tar:
        for name in (RAW.decode("utf-8", "surrogateescape"), "ok.png"):
            data = _png()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_tar_member_named_in_raw_bytes_is_refused_in_words(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "x.tar")
    with pytest.raises(DatasetError, match=r"x\.tar.*UTF-8") as err:
        extract_archive(archive, tmp_path / "out")
    assert "\\xff\\xfe" in str(err.value)
    str(err.value).encode("utf-8")  # printable as it is
    assert not (tmp_path / "out").exists()


def test_importing_it_is_a_dataset_error_and_leaves_nothing(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "x.tar")
    with pytest.raises(DatasetError, match="UTF-8"):
        import_dataset(archive, tmp_path / "ws")
    assert not any((tmp_path / "ws").glob("*")) if (tmp_path / "ws").exists() else True


def test_zip_names_in_other_encodings_still_unpack(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        info = zipfile.ZipInfo("caf\xe9.png")  # cp437 in the header, a valid str once read
        zipped.writestr(info, _png())
    extract_archive(archive, tmp_path / "out")
    assert len(list((tmp_path / "out").iterdir())) == 1


def test_a_folder_file_named_in_raw_bytes_is_skipped_and_listed(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "ok.png").write_bytes(_png())
    (folder / os.fsdecode(RAW)).write_bytes(_png())
    result = import_dataset(folder, tmp_path / "ws")
    assert result.samples == 1
    assert [(p.kind, p.path) for p in result.problems] == [("unreadable-name", "\\xff\\xfe.png")]
    result.render().encode("utf-8")
