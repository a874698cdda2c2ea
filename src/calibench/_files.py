"""Atomic file writes: whatever is written goes to a temporary file beside the target, which one
``os.replace`` then puts in place, so a reader (or the next run) sees the old file or the new
one, never half of one. A failure (a full disk, Ctrl-C) removes the temporary file.

Beside the target rather than in the system temp dir: ``os.replace`` is atomic only within one
filesystem. The temporary name starts with a dot and the target's name, so leftovers of a
killed process are recognisable (and hidden).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temp_beside(path: Path, suffix: str = ".partial", mode: int = 0o644) -> Path:
    """A new empty file with a unique name in ``path``'s folder (created if missing), readable as
    ``mode`` (``mkstemp`` makes it private; the result is an ordinary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    os.chmod(name, mode)
    return Path(name)


@contextlib.contextmanager
def replacing(path: Path, suffix: str = ".partial", mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; it replaces ``path`` when the block ends
    normally and is deleted when the block raises. ``suffix`` matters to writers that choose the
    format by the name (``np.savez`` appends ``.npz`` to any other name)."""
    temp = temp_beside(path, suffix, mode)
    try:
        yield temp
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all, flushed to the disk before the
    rename so that a crash right after cannot leave an empty file in its place."""
    path = Path(path)
    with replacing(path, ".tmp", mode) as temp, temp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    return path
