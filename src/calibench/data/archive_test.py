import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from calibench.data.archive import (
    _copy,
    _Entry,
    archive_stem,
    extract_archive,
    is_archive,
)
from calibench.errors import DatasetError


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz" if path.name.endswith("gz") else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in entries.items():
            out.writestr(name, data)
    return path


def _left_over(folder: Path) -> list[str]:
    """What a failed extraction left in the target's parent (nothing, not even a temp)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz", ".tgz"])
def test_files_and_folders_unpack_in_every_format(tmp_path: Path, suffix: str) -> None:
    archive = tmp_path / f"data{suffix}"
    files = {"top.txt": b"top", "sub/deeper/x.bin": bytes(range(256)) * 9}
    if suffix == ".zip":
        _zip(archive, {**files, "empty/": b""})
    else:
        members = [(_member(n), d) for n, d in files.items()]
        _tar(archive, [*members, (_member("empty", tarfile.DIRTYPE), None)])
    assert is_archive(archive) and archive_stem(archive) == "data"
    stats = extract_archive(archive, tmp_path / "out" / "data")
    target = tmp_path / "out" / "data"
    assert (target / "top.txt").read_bytes() == b"top"
    assert (target / "sub" / "deeper" / "x.bin").read_bytes() == files["sub/deeper/x.bin"]
    assert (target / "empty").is_dir()
    assert stats.files == 2 and stats.bytes == 3 + 256 * 9
    assert _left_over(tmp_path / "out") == ["data"]  # no temporary folder stays beside it


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.txt", "climbs out"),
        ("ok/../../evil.txt", "climbs out"),
        ("..\\evil.txt", "climbs out"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:\\evil.txt", "absolute path"),
    ],
)
def test_paths_leaving_the_target_are_refused(tmp_path: Path, name: str, message: str) -> None:
    for archive in (
        _zip(tmp_path / "a.zip", {"fine.txt": b"x", name: b"evil"}),
        _tar(tmp_path / "a.tar", [(_member("fine.txt"), b"x"), (_member(name), b"evil")]),
    ):
        with pytest.raises(DatasetError, match=message):
            extract_archive(archive, tmp_path / "out" / "a")
        assert _left_over(tmp_path / "out") == []
    assert not (tmp_path / "evil.txt").exists()


def test_symlinks_out_are_refused_in_tar_and_zip(tmp_path: Path) -> None:
    tar = _tar(tmp_path / "l.tar", [(_member("passwd", tarfile.SYMTYPE, "/etc/passwd"), None)])
    with pytest.raises(DatasetError, match="is a link"):
        extract_archive(tar, tmp_path / "out" / "l")
    link = zipfile.ZipInfo("passwd")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as out:
        out.writestr(link, "../../../etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        extract_archive(tmp_path / "l.zip", tmp_path / "out" / "l")
    assert _left_over(tmp_path / "out") == []


def test_hardlinks_and_device_files_are_refused_even_inside_the_archive(tmp_path: Path) -> None:
    hard = _tar(
        tmp_path / "h.tar",
        [(_member("a.txt"), b"a"), (_member("b.txt", tarfile.LNKTYPE, "a.txt"), None)],
    )
    with pytest.raises(DatasetError, match="is a link"):
        extract_archive(hard, tmp_path / "out" / "h")
    device = _tar(tmp_path / "d.tar", [(_member("null", tarfile.CHRTYPE), None)])
    with pytest.raises(DatasetError, match="device file"):
        extract_archive(device, tmp_path / "out" / "d")
    assert _left_over(tmp_path / "out") == []


def test_too_many_files_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(10_000):
            out.writestr(f"f/{i}.txt", b"")
    with pytest.raises(DatasetError, match="more than 1000 entries"):
        extract_archive(archive, tmp_path / "out" / "many", max_files=1000)
    assert _left_over(tmp_path / "out") == []


def test_a_header_claiming_10_gb_is_refused_without_reading_the_data(tmp_path: Path) -> None:
    huge = _member("huge.bin")
    huge.size = 10 * 1024**3  # the header alone: no data follows
    archive = _tar(tmp_path / "bomb.tar.gz", [(_member("a.txt"), b"a"), (huge, None)])
    assert archive.stat().st_size < 10_000
    with pytest.raises(DatasetError, match="expands to more than"):
        extract_archive(archive, tmp_path / "out" / "bomb")
    assert _left_over(tmp_path / "out") == []


def test_a_highly_compressible_file_past_the_byte_limit_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "zeros.zip", {"zeros.bin": bytes(4 * 1024 * 1024)})
    assert archive.stat().st_size < 10_000  # 4 MiB inflates from a few kB
    with pytest.raises(DatasetError, match="expands to more than 1048576 bytes"):
        extract_archive(archive, tmp_path / "out" / "zeros", max_bytes=1024 * 1024)
    assert _left_over(tmp_path / "out") == []
    assert extract_archive(archive, tmp_path / "out" / "zeros").bytes == 4 * 1024 * 1024


def test_bytes_beyond_a_lying_header_or_the_budget_are_refused_while_copying(
    tmp_path: Path,
) -> None:
    with pytest.raises(DatasetError, match="more data than its header declares"):
        _copy(Path("a.zip"), _Entry("x", False, 10), io.BytesIO(bytes(100)), tmp_path / "x", 10**6)
    with pytest.raises(DatasetError, match="past its size limit"):
        _copy(Path("a.zip"), _Entry("y", False, 100), io.BytesIO(bytes(100)), tmp_path / "y", 50)


def test_a_zip_whose_header_understates_its_data_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "liar.zip", {"data.bin": bytes(100_000)})
    raw = bytearray(archive.read_bytes())
    info = zipfile.ZipFile(archive).getinfo("data.bin")
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = (10).to_bytes(4, "little")  # uncompressed size: 10
    raw[info.header_offset + 22 : info.header_offset + 26] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="liar.zip"):
        extract_archive(archive, tmp_path / "out" / "liar")
    assert _left_over(tmp_path / "out") == []


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz"])
def test_truncated_archives_are_a_clear_error_and_leave_nothing(
    tmp_path: Path, suffix: str
) -> None:
    archive = tmp_path / f"cut{suffix}"
    payload = {"a.bin": bytes(range(256)) * 200, "b.bin": bytes(range(255, -1, -1)) * 200}
    if suffix == ".zip":
        _zip(archive, payload)
    else:
        _tar(archive, [(_member(n), d) for n, d in payload.items()])
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) * 3 // 4])  # a.bin whole, b.bin cut
    with pytest.raises(DatasetError, match=r"corrupt or truncated|is truncated"):
        extract_archive(archive, tmp_path / "out" / "cut")
    assert _left_over(tmp_path / "out") == []


def test_garbage_duplicates_and_an_existing_target_are_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.tar.gz").write_bytes(b"this is not gzip at all")
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        extract_archive(tmp_path / "junk.tar.gz", tmp_path / "out" / "junk")
    twice = _tar(tmp_path / "twice.tar", [(_member("a"), b"1"), (_member("a"), b"2")])
    with pytest.raises(DatasetError, match="twice"):
        extract_archive(twice, tmp_path / "out" / "twice")
    assert _left_over(tmp_path / "out") == []
    (tmp_path / "out" / "taken").mkdir()
    good = _zip(tmp_path / "good.zip", {"a": b"1"})
    with pytest.raises(DatasetError, match="already exists"):
        extract_archive(good, tmp_path / "out" / "taken")
