from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from calibench.targets.wheelhouse import _tags, pack_installed, runtime_closure


def test_tags_are_compressed_as_pip_names_them() -> None:
    wheel = "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n"
    assert _tags(wheel) == "cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64"
    assert _tags("Tag: py3-none-any\n") == "py3-none-any"


def test_the_closure_is_the_runtime_one() -> None:
    names = {canonicalize_name(d.metadata["Name"]) for d in runtime_closure(["calibench"])}
    assert {"calibench", "onnxruntime", "numpy", "asyncssh"} <= names
    assert not names & {"torch", "pytest", "mypy", "ruff"}


def test_a_packed_wheel_is_reproducible_and_installs(tmp_path: Path) -> None:
    """mdurl (pure Python, tiny) packed from what is installed, twice: the same bytes; then
    installed offline into a fresh folder, it imports."""
    dist = metadata.distribution("mdurl")
    first = pack_installed(dist, tmp_path)
    again = tmp_path / "again"
    again.mkdir()
    assert pack_installed(dist, again).read_bytes() == first.read_bytes()
    names = zipfile.ZipFile(first).namelist()
    assert not any(n.endswith(".pyc") or n.endswith("/INSTALLER") for n in names)
    assert names[-1].endswith(".dist-info/RECORD")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
         "--target", str(target), str(first)],
        check=True,
    )  # fmt: skip
    check = subprocess.run(
        [sys.executable, "-c", "import mdurl; print(mdurl.__file__)"],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.startswith(str(target))
