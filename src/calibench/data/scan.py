"""What the format readers share: the listing of a dataset folder and what a reader returns.

The folder is listed once; every reader works on that listing rather than walking the disk
again. Annotation files name their images in many ways (relative to the annotation file, to
the dataset root, as bare file names, even as absolute paths from the author's machine), so
:meth:`Tree.resolve` tries each in turn and falls back to a unique file-name match.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from calibench.data.annotations import Task
from calibench.data.images import IMAGE_SUFFIXES
from calibench.data.manifest import MANIFEST_NAME, Problem

_JUNK = frozenset({"__MACOSX", "Thumbs.db", MANIFEST_NAME})


def is_image_name(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


@dataclass
class Candidate:
    """One sample as an annotation format describes it, before its image is opened."""

    path: str
    label: int | None = None
    boxes: list[list[float]] | None = None
    box_labels: list[int] | None = None
    ignore: list[bool] | None = None
    image_id: int | str | None = None
    splits: tuple[str, ...] = ()


@dataclass
class Layout:
    """A recognised dataset: its task, classes, samples, and what did not fit."""

    task: Task
    format: str
    classes: list[str]
    samples: list[Candidate]
    problems: list[Problem] = field(default_factory=list)
    class_ids: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Format-specific manifest fields (``npz``, ``arrays`` for tensors)."""


@dataclass
class Tree:
    """The visible files of a dataset folder, as POSIX paths relative to ``root``.

    ``base`` is where the content starts: an archive or folder that only wraps one sub-folder
    (``cats-dogs.zip`` → ``cats-dogs/…``) is looked at from inside that sub-folder.
    """

    root: Path
    base: str
    files: list[str]
    display: str = ""
    """How messages name ``root``: the source the user gave, not the staging folder."""
    bad_names: list[str] = field(default_factory=list)
    """Files and folders left out because their names are not valid UTF-8 (shown escaped)."""

    @classmethod
    def scan(cls, root: Path, display: str = "") -> Tree:
        root = Path(root)
        base = ""
        while True:
            entries = [e for e in os.scandir(root / base) if _visible(e.name)]
            if len(entries) != 1 or not entries[0].is_dir(follow_symlinks=False):
                break
            base = posixpath.join(base, entries[0].name)
        files: list[str] = []
        bad: list[str] = []
        for folder, dirs, names in os.walk(root / base):
            rel = Path(folder).relative_to(root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            bad.extend(prefix + _escaped(n) for n in dirs + names if not _utf8(n))
            dirs[:] = sorted(d for d in dirs if _visible(d) and _utf8(d))
            files.extend(prefix + n for n in names if _visible(n) and _utf8(n))
        return cls(root, base, sorted(files), display, sorted(bad))

    def path(self, rel: str) -> Path:
        return self.root.joinpath(*rel.split("/"))

    def where(self, rel: str = "") -> str:
        """``rel`` as messages name it, under :attr:`display`."""
        shown = self.display or str(self.root)
        return f"{shown}/{rel}" if rel else shown

    def inner(self, rel: str) -> str:
        """``rel`` (a file under ``base``) as seen from ``base``."""
        return rel[len(self.base) + 1 :] if self.base else rel

    def depth(self, rel: str) -> int:
        """How many folders below ``base`` the file lies."""
        return self.inner(rel).count("/")

    @cached_property
    def file_set(self) -> frozenset[str]:
        return frozenset(self.files)

    @cached_property
    def images(self) -> list[str]:
        return [f for f in self.files if is_image_name(f)]

    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for rel in self.files:
            index.setdefault(posixpath.basename(rel), []).append(rel)
        return index

    def with_suffix(self, *suffixes: str, max_depth: int = 3) -> list[str]:
        return [
            f for f in self.files if f.lower().endswith(suffixes) and self.depth(f) <= max_depth
        ]

    def resolve(self, ref: str, near: Iterable[str]) -> str | None:
        """The file that ``ref`` (from an annotation) names: relative to one of the ``near``
        folders, else the only file of that name; ``None`` when there is none or several."""
        ref = ref.strip().replace("\\", "/")
        if not ref.startswith("/"):
            for folder in near:
                rel = posixpath.normpath(posixpath.join(folder, ref))
                if rel in self.file_set:
                    return rel
        found = self._by_name.get(posixpath.basename(ref), [])
        return found[0] if len(found) == 1 else None


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in _JUNK


def _utf8(name: str) -> bool:
    """Whether a name read from the disk is valid UTF-8 (undecodable bytes come back as
    surrogates, which cannot be written into the manifest or printed)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _escaped(name: str) -> str:
    return os.fsencode(name).decode("utf-8", "backslashreplace")
