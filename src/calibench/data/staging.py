"""All-or-nothing writes: a folder built beside its final place, a file replaced in one step.

An import can fail half-way (a corrupt archive, a full disk, Ctrl-C). Building the result in a
hidden sibling folder and renaming it into place at the end means the final path either holds a
complete dataset or nothing; a sibling (not the system temp dir) keeps the rename on one
filesystem, where it is atomic.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from calibench._files import write_text_atomic
from calibench.errors import DatasetError


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``target``; rename it to ``target`` when the block
    ends normally, delete it when the block raises (Ctrl-C included)."""
    target = Path(target)
    if target.exists() or target.is_symlink():
        raise DatasetError(f"{target} already exists; choose another name or delete it first")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
        temp.chmod(0o755)  # mkdtemp makes it private; the dataset is an ordinary folder
    except OSError as exc:
        raise DatasetError(f"cannot create a folder in {target.parent} ({exc}); check it") from exc
    try:
        yield temp
        if target.exists() or target.is_symlink():
            raise DatasetError(f"{target} appeared while importing; choose another name")
        try:
            os.rename(temp, target)
        except OSError as exc:
            raise DatasetError(f"cannot move the import into {target} ({exc})") from exc
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def write_dataset_text(path: Path, text: str) -> None:
    """:func:`calibench._files.write_text_atomic`, its failure told as a :class:`DatasetError`
    that names the file."""
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise DatasetError(f"cannot write {path} ({exc}); check the disk and permissions") from exc
