import stat
from pathlib import Path

import pytest

from calibench._files import replacing, write_text_atomic


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failing_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_the_suffix_is_kept_for_writers_that_choose_the_format_by_name(tmp_path: Path) -> None:
    with replacing(tmp_path / "x.npz", suffix=".tmp.npz") as temp:
        assert temp.name.startswith(".x.npz.") and temp.name.endswith(".tmp.npz")
        temp.write_bytes(b"z")
    assert (tmp_path / "x.npz").read_bytes() == b"z"
